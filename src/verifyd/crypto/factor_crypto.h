#pragma once
// FactorCrypto with OpenSSL 3: TOTP HMACs, factor secrets sealed with AES-256-GCM under the
// factor key (with rotation), P-256 ECDSA for push factors and HS256 access tokens.
#include <string>
#include <string_view>

#include "verifyd/common/random.h"
#include "verifyd/common/result.h"
#include "verifyd/core/ports/factor_crypto.h"

namespace verifyd {

class OpenSslFactorCrypto final : public FactorCrypto {
 public:
  // `factor_key`: 32 bytes, seals every new secret. `previous_factor_key`: empty, or the 32-byte
  // key being rotated out, still opens what it sealed. `jwt_key`: 32 bytes (derived from the
  // server secret) for access tokens. Other sizes are a programming error (loadFactorKey only
  // returns 32-byte keys) and abort.
  OpenSslFactorCrypto(std::string factor_key, std::string previous_factor_key, std::string jwt_key);
  ~OpenSslFactorCrypto() override;
  OpenSslFactorCrypto(const OpenSslFactorCrypto&) = delete;
  OpenSslFactorCrypto& operator=(const OpenSslFactorCrypto&) = delete;

  std::string hmac(std::string_view alg, std::string_view key,
                   std::string_view data) const override;
  // version (1 byte) || key id (first 8 bytes of SHA-256 of the key) || nonce (12 random bytes)
  // || ciphertext || tag (16 bytes); version and key id are authenticated as associated data.
  std::string sealSecret(std::string_view plaintext) const override;
  // kInternal when the key id is neither the current nor the previous key's, or the value was
  // altered.
  Result<std::string> openSecret(std::string_view sealed) const override;
  bool isP256PublicKey(std::string_view spki_base64) const override;
  // Accepts a DER signature, or for robustness a raw 64-byte r||s one.
  bool verifyEs256(std::string_view spki_base64, std::string_view message,
                   std::string_view signature_base64) const override;
  Result<std::string> verifyJws(std::string_view spki_base64,
                                std::string_view compact) const override;
  std::string signJwt(std::string_view claims_json) const override;
  Result<std::string> verifyJwt(std::string_view token, std::int64_t now) const override;

 private:
  std::string key_;
  std::string key_id_;
  std::string previous_key_;
  std::string previous_key_id_;
  std::string jwt_key_;
};

// The 32-byte factor key from `file` when it is not empty (a file of mode 0600 or stricter),
// else from `env_value`. Either holds 64 hex digits, 32 raw bytes, or the Base64 (standard or
// URL-safe, padding optional) of 32 bytes; surrounding whitespace is ignored except in the raw
// form. kInvalidArgument, with a message that says what is wrong, otherwise (also when both
// are empty).
Result<std::string> loadFactorKey(const std::string& file, const std::string& env_value);

// Writes a new random factor key to `path` as 64 hex digits and a newline, mode 0600. Never
// overwrites: kInternal when `path` exists (an existing key protects existing secrets).
// Returns the key's 32 bytes.
Result<std::string> createFactorKeyFile(const std::string& path, Random& random);

}  // namespace verifyd
