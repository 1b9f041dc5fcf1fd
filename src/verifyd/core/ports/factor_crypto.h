#pragma once
// The cryptography factors need, behind one port (implemented with OpenSSL in crypto/).
#include <cstdint>
#include <string>
#include <string_view>

#include "verifyd/common/result.h"

namespace verifyd {

class FactorCrypto {
 public:
  virtual ~FactorCrypto() = default;
  // HMAC of `data` under `key` with "sha1", "sha256" or "sha512" (TOTP, RFC 6238). Raw bytes.
  virtual std::string hmac(std::string_view alg, std::string_view key,
                           std::string_view data) const = 0;
  // Factor secrets at rest: AES-256-GCM under the factor key (a key of its own, from a file or
  // an environment variable, never stored beside the database). The output names the key it
  // was sealed with, so that `open` still reads secrets sealed under the previous key during a
  // rotation.
  virtual std::string sealSecret(std::string_view plaintext) const = 0;
  virtual Result<std::string> openSecret(std::string_view sealed) const = 0;
  // True when `spki_base64` is the standard Base64 of a DER SubjectPublicKeyInfo of a P-256 key.
  virtual bool isP256PublicKey(std::string_view spki_base64) const = 0;
  // ECDSA P-256 / SHA-256 over `message`; `signature_base64` is the standard Base64 of a DER
  // signature (what the Verify Push device SDKs send when they verify a factor).
  virtual bool verifyEs256(std::string_view spki_base64, std::string_view message,
                           std::string_view signature_base64) const = 0;
  // A compact JWS (header.payload.signature, base64url, alg ES256, signature r||s as in RFC
  // 7515): kInvalidArgument unless the signature verifies with the key; else the payload JSON.
  virtual Result<std::string> verifyJws(std::string_view spki_base64,
                                        std::string_view compact) const = 0;
  // Access tokens: compact JWTs (HS256) under a key derived from the server secret, and their
  // verification (signature and `exp` against `now`): the claims JSON, or kUnauthenticated.
  virtual std::string signJwt(std::string_view claims_json) const = 0;
  virtual Result<std::string> verifyJwt(std::string_view token, std::int64_t now) const = 0;
};

}  // namespace verifyd
