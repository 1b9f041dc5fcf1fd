#include "verifyd/crypto/factor_crypto.h"

#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

namespace verifyd {

namespace {
constexpr unsigned char kSealVersion = 1;
constexpr std::size_t kKeySize = 32, kKeyId = 8, kNonce = 12, kTag = 16;
constexpr std::size_t kHeader = 1 + kKeyId;

using PkeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)>;
using CipherCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

const unsigned char* bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

bool equalConstantTime(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string keyId(std::string_view key) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(key.data(), key.size(), digest, &len, EVP_sha256(), nullptr) != 1) std::abort();
  return std::string(reinterpret_cast<char*>(digest), kKeyId);
}

std::string hmacSha256(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), bytes(data), data.size(), out,
           &len) == nullptr)
    std::abort();
  return std::string(reinterpret_cast<char*>(out), len);
}

// ---- Base64 (RFC 4648 §4 and §5) ----

constexpr char kStd[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr char kUrl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string base64UrlEncode(std::string_view in) {
  std::string out;
  out.reserve((in.size() * 4 + 2) / 3);
  std::uint32_t buffer = 0;
  int bits = 0;
  for (char c : in) {
    buffer = (buffer << 8) | static_cast<unsigned char>(c);
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kUrl[(buffer >> bits) & 0x3f]);
    }
  }
  if (bits > 0) out.push_back(kUrl[(buffer << (6 - bits)) & 0x3f]);
  return out;
}

// Canonical Base64 in one alphabet: `=` padding optional (but then complete), no other
// character, unused trailing bits zero (so that one value has exactly one text).
std::optional<std::string> base64Decode(std::string_view in, bool url, bool allow_padding) {
  if (!in.empty() && in.back() == '=') {
    if (!allow_padding || in.size() % 4 != 0) return std::nullopt;
    in.remove_suffix(1);
    if (!in.empty() && in.back() == '=') in.remove_suffix(1);
  }
  if (in.size() % 4 == 1) return std::nullopt;
  const char* alphabet = url ? kUrl : kStd;
  std::string out;
  out.reserve(in.size() * 3 / 4);
  std::uint32_t buffer = 0;
  int bits = 0;
  for (char c : in) {
    const char* p = c == '\0' ? nullptr : std::strchr(alphabet, c);
    if (p == nullptr) return std::nullopt;
    buffer = (buffer << 6) | static_cast<std::uint32_t>(p - alphabet);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buffer >> bits) & 0xff));
    }
  }
  if ((buffer & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

// The three parts of a compact JWS/JWT (base64url without padding), decoded, and the signing
// input (the text before the second dot).
struct Compact {
  std::string header, payload, signature;
  std::string_view signing_input;
};

std::optional<Compact> splitCompact(std::string_view token) {
  std::size_t a = token.find('.');
  if (a == std::string_view::npos) return std::nullopt;
  std::size_t b = token.find('.', a + 1);
  if (b == std::string_view::npos || token.find('.', b + 1) != std::string_view::npos)
    return std::nullopt;
  auto header = base64Decode(token.substr(0, a), true, false);
  auto payload = base64Decode(token.substr(a + 1, b - a - 1), true, false);
  auto signature = base64Decode(token.substr(b + 1), true, false);
  if (!header || !payload || !signature) return std::nullopt;
  return Compact{std::move(*header), std::move(*payload), std::move(*signature),
                 token.substr(0, b)};
}

// A JOSE header that is a JSON object naming `alg`, without critical extensions (RFC 7515
// §4.1.11: none is understood here).
bool headerHasAlg(const std::string& header, const char* alg) {
  auto json = nlohmann::json::parse(header, nullptr, false);
  if (json.is_discarded() || !json.is_object() || json.contains("crit")) return false;
  auto it = json.find("alg");
  return it != json.end() && it->is_string() && it->get<std::string>() == alg;
}

// ---- P-256 ECDSA ----

PkeyPtr parseP256(std::string_view spki_base64) {
  PkeyPtr none(nullptr, EVP_PKEY_free);
  auto der = base64Decode(spki_base64, false, true);
  if (!der || der->empty()) return none;
  const unsigned char* p = bytes(*der);
  PkeyPtr key(d2i_PUBKEY(nullptr, &p, static_cast<long>(der->size())), EVP_PKEY_free);
  if (!key || p != bytes(*der) + der->size() || !EVP_PKEY_is_a(key.get(), "EC")) return none;
  char group[80];
  std::size_t group_len = 0;
  if (EVP_PKEY_get_group_name(key.get(), group, sizeof group, &group_len) != 1 ||
      OBJ_sn2nid(group) != NID_X9_62_prime256v1)
    return none;
  std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx(
      EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr), EVP_PKEY_CTX_free);
  if (!ctx || EVP_PKEY_public_check(ctx.get()) != 1) return none;
  return key;
}

bool verifyDer(EVP_PKEY* key, std::string_view message, std::string_view der) {
  MdCtxPtr ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  return ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) == 1 &&
         EVP_DigestVerify(ctx.get(), bytes(der), der.size(), bytes(message), message.size()) == 1;
}

// The DER encoding of a raw r||s signature (RFC 7515 §A.3), or empty.
std::string rawToDer(std::string_view raw) {
  if (raw.size() != 64) return {};
  std::unique_ptr<ECDSA_SIG, decltype(&ECDSA_SIG_free)> sig(ECDSA_SIG_new(), ECDSA_SIG_free);
  BIGNUM* r = BN_bin2bn(bytes(raw), 32, nullptr);
  BIGNUM* s = BN_bin2bn(bytes(raw) + 32, 32, nullptr);
  if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return {};
  }
  int len = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (len <= 0) return {};
  std::string der(static_cast<std::size_t>(len), '\0');
  auto* out = reinterpret_cast<unsigned char*>(der.data());
  if (i2d_ECDSA_SIG(sig.get(), &out) != len) return {};
  return der;
}

bool verifyP256(EVP_PKEY* key, std::string_view message, std::string_view signature) {
  if (verifyDer(key, message, signature)) return true;
  // A 64-byte value is almost never DER (that needs r and s 29 bytes or shorter): r||s.
  std::string der = rawToDer(signature);
  return !der.empty() && verifyDer(key, message, der);
}

// ---- Factor key files ----

bool isHex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return c - 'A' + 10;
}

std::optional<std::string> decodeKey(std::string_view text) {
  if (text.size() == kKeySize) return std::string(text);  // raw bytes, taken as they are
  const char* space = " \t\r\n";
  std::size_t first = text.find_first_not_of(space);
  if (first == std::string_view::npos) return std::nullopt;
  text = text.substr(first, text.find_last_not_of(space) - first + 1);
  if (text.size() == 2 * kKeySize) {
    bool hex = true;
    for (char c : text) hex = hex && isHex(c);
    if (hex) {
      std::string key(kKeySize, '\0');
      for (std::size_t i = 0; i < kKeySize; ++i)
        key[i] = static_cast<char>(hexValue(text[2 * i]) * 16 + hexValue(text[2 * i + 1]));
      return key;
    }
  }
  for (bool url : {false, true}) {
    auto key = base64Decode(text, url, true);
    if (key && key->size() == kKeySize) return key;
  }
  return std::nullopt;
}

constexpr const char* kKeyForms = "64 hex digits, 32 raw bytes or the Base64 of 32 bytes";
}  // namespace

OpenSslFactorCrypto::OpenSslFactorCrypto(std::string factor_key, std::string previous_factor_key,
                                         std::string jwt_key)
    : key_(std::move(factor_key)),
      previous_key_(std::move(previous_factor_key)),
      jwt_key_(std::move(jwt_key)) {
  if (key_.size() != kKeySize || (!previous_key_.empty() && previous_key_.size() != kKeySize) ||
      jwt_key_.size() != kKeySize)
    std::abort();
  key_id_ = keyId(key_);
  if (!previous_key_.empty()) previous_key_id_ = keyId(previous_key_);
}

OpenSslFactorCrypto::~OpenSslFactorCrypto() {
  OPENSSL_cleanse(key_.data(), key_.size());
  OPENSSL_cleanse(previous_key_.data(), previous_key_.size());
  OPENSSL_cleanse(jwt_key_.data(), jwt_key_.size());
}

std::string OpenSslFactorCrypto::hmac(std::string_view alg, std::string_view key,
                                      std::string_view data) const {
  auto is = [&](std::string_view name) {
    if (alg.size() != name.size()) return false;
    for (std::size_t i = 0; i < alg.size(); ++i)
      if (std::tolower(static_cast<unsigned char>(alg[i])) != name[i]) return false;
    return true;
  };
  const EVP_MD* md = is("sha1")     ? EVP_sha1()
                     : is("sha256") ? EVP_sha256()
                     : is("sha512") ? EVP_sha512()
                                    : nullptr;
  if (md == nullptr) return {};
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (HMAC(md, key.data(), static_cast<int>(key.size()), bytes(data), data.size(), out, &len) ==
      nullptr)
    std::abort();
  return std::string(reinterpret_cast<char*>(out), len);
}

std::string OpenSslFactorCrypto::sealSecret(std::string_view plaintext) const {
  std::string out(kHeader + kNonce + plaintext.size() + kTag, '\0');
  out[0] = static_cast<char>(kSealVersion);
  std::memcpy(out.data() + 1, key_id_.data(), kKeyId);
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  unsigned char* nonce = o + kHeader;
  unsigned char* ciphertext = nonce + kNonce;
  if (RAND_bytes(nonce, kNonce) != 1) std::abort();
  CipherCtxPtr ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  int len = 0, final_len = 0;
  bool ok =
      ctx && EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, bytes(key_), nonce) == 1 &&
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, o, kHeader) == 1 &&
      EVP_EncryptUpdate(ctx.get(), ciphertext, &len, bytes(plaintext),
                        static_cast<int>(plaintext.size())) == 1 &&
      EVP_EncryptFinal_ex(ctx.get(), ciphertext + len, &final_len) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTag, ciphertext + plaintext.size()) ==
          1;
  if (!ok) std::abort();
  return out;
}

Result<std::string> OpenSslFactorCrypto::openSecret(std::string_view sealed) const {
  if (sealed.size() < kHeader + kNonce + kTag)
    return fail(Error::internal("sealed factor secret too short"));
  if (static_cast<unsigned char>(sealed[0]) != kSealVersion)
    return fail(Error::internal("sealed factor secret of an unknown version"));
  std::string_view id = sealed.substr(1, kKeyId);
  const std::string* key = nullptr;
  if (equalConstantTime(id, key_id_))
    key = &key_;
  else if (!previous_key_.empty() && equalConstantTime(id, previous_key_id_))
    key = &previous_key_;
  else
    return fail(Error::internal(
        "factor secret sealed under a factor key that is neither the current nor the previous"));
  const unsigned char* s = bytes(sealed);
  const unsigned char* nonce = s + kHeader;
  const unsigned char* ciphertext = nonce + kNonce;
  std::size_t n = sealed.size() - kHeader - kNonce - kTag;
  std::string out(n, '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  CipherCtxPtr ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  int len = 0, final_len = 0;
  bool ok = ctx &&
            EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, bytes(*key), nonce) == 1 &&
            EVP_DecryptUpdate(ctx.get(), nullptr, &len, s, kHeader) == 1 &&
            EVP_DecryptUpdate(ctx.get(), o, &len, ciphertext, static_cast<int>(n)) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTag,
                                const_cast<unsigned char*>(ciphertext + n)) == 1 &&
            EVP_DecryptFinal_ex(ctx.get(), o + len, &final_len) == 1;
  if (!ok) {
    ERR_clear_error();
    OPENSSL_cleanse(out.data(), out.size());
    return fail(Error::internal("sealed factor secret does not match the factor key"));
  }
  return out;
}

bool OpenSslFactorCrypto::isP256PublicKey(std::string_view spki_base64) const {
  bool ok = parseP256(spki_base64) != nullptr;
  ERR_clear_error();
  return ok;
}

bool OpenSslFactorCrypto::verifyEs256(std::string_view spki_base64, std::string_view message,
                                      std::string_view signature_base64) const {
  auto signature = base64Decode(signature_base64, false, true);
  PkeyPtr key = parseP256(spki_base64);
  bool ok = signature && !signature->empty() && key && verifyP256(key.get(), message, *signature);
  ERR_clear_error();
  return ok;
}

Result<std::string> OpenSslFactorCrypto::verifyJws(std::string_view spki_base64,
                                                   std::string_view compact) const {
  auto invalid = [](const char* why) {
    ERR_clear_error();
    return fail(Error::of(ErrorKind::kInvalidArgument, why));
  };
  PkeyPtr key = parseP256(spki_base64);
  if (!key) return invalid("the factor's public key is not a P-256 key");
  auto jws = splitCompact(compact);
  if (!jws) return invalid("not a compact JWS (three base64url parts without padding)");
  if (!headerHasAlg(jws->header, "ES256")) return invalid("the JWS header is not alg ES256");
  if (jws->signature.size() != 64) return invalid("the JWS signature is not 64 bytes (r||s)");
  std::string der = rawToDer(jws->signature);
  if (der.empty() || !verifyDer(key.get(), jws->signing_input, der))
    return invalid("the JWS signature does not verify with the factor's key");
  ERR_clear_error();
  return std::move(jws->payload);
}

std::string OpenSslFactorCrypto::signJwt(std::string_view claims_json) const {
  std::string token = base64UrlEncode(R"({"alg":"HS256","typ":"JWT"})");
  token.push_back('.');
  token.append(base64UrlEncode(claims_json));
  std::string signature = hmacSha256(jwt_key_, token);
  token.push_back('.');
  token.append(base64UrlEncode(signature));
  return token;
}

Result<std::string> OpenSslFactorCrypto::verifyJwt(std::string_view token, std::int64_t now) const {
  auto unauthenticated = [](const char* why) {
    return fail(Error::of(ErrorKind::kUnauthenticated, why));
  };
  auto jwt = splitCompact(token);
  if (!jwt) return unauthenticated("malformed access token");
  if (!equalConstantTime(hmacSha256(jwt_key_, jwt->signing_input), jwt->signature))
    return unauthenticated("access token signature does not verify");
  if (!headerHasAlg(jwt->header, "HS256")) return unauthenticated("access token is not HS256");
  auto claims = nlohmann::json::parse(jwt->payload, nullptr, false);
  if (claims.is_discarded() || !claims.is_object()) return unauthenticated("malformed claims");
  auto exp = claims.find("exp");
  if (exp == claims.end() || !exp->is_number())
    return unauthenticated("access token without expiry");
  bool live;
  if (exp->is_number_unsigned())
    live = now < 0 || exp->get<std::uint64_t>() > static_cast<std::uint64_t>(now);
  else if (exp->is_number_integer())
    live = exp->get<std::int64_t>() > now;
  else
    live = exp->get<double>() > static_cast<double>(now);
  if (!live) return unauthenticated("access token expired");
  return std::move(jwt->payload);
}

Result<std::string> loadFactorKey(const std::string& file, const std::string& env_value) {
  auto invalid = [](std::string why) {
    return fail(Error::of(ErrorKind::kInvalidArgument, std::move(why)));
  };
  if (file.empty()) {
    if (env_value.empty())
      return invalid("no factor key configured (neither a key file nor the environment)");
    auto key = decodeKey(env_value);
    if (!key)
      return invalid(std::string("the factor key from the environment is not a 32-byte key (") +
                     kKeyForms + ")");
    return *key;
  }
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return invalid("cannot open factor key file " + file + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return invalid("factor key file " + file + " is not a regular file");
  }
  if ((st.st_mode & 077) != 0) {
    ::close(fd);
    return invalid("factor key file " + file +
                   " must not be readable by group or others (chmod 600)");
  }
  std::string content(4097, '\0');
  std::size_t size = 0;
  while (size < content.size()) {
    ssize_t n = ::read(fd, content.data() + size, content.size() - size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return invalid("cannot read factor key file " + file + ": " + std::strerror(err));
    }
    if (n == 0) break;
    size += static_cast<std::size_t>(n);
  }
  ::close(fd);
  content.resize(size);
  auto key = size < 4097 ? decodeKey(content) : std::nullopt;
  OPENSSL_cleanse(content.data(), content.size());
  if (!key)
    return invalid("factor key file " + file + " does not hold a 32-byte key (" + kKeyForms + ")");
  return *key;
}

Result<std::string> createFactorKeyFile(const std::string& path, Random& random) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    return fail(
        Error::internal("cannot create factor key file " + path + ": " + std::strerror(errno)));
  std::string key = random.bytes(kKeySize);
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  for (char c : key) {
    hex.push_back(kDigits[static_cast<unsigned char>(c) >> 4]);
    hex.push_back(kDigits[static_cast<unsigned char>(c) & 0x0f]);
  }
  hex.push_back('\n');
  bool ok = ::fchmod(fd, 0600) == 0 &&
            ::write(fd, hex.data(), hex.size()) == static_cast<ssize_t>(hex.size()) &&
            ::fsync(fd) == 0;
  ::close(fd);
  OPENSSL_cleanse(hex.data(), hex.size());
  if (!ok) {
    ::unlink(path.c_str());
    return fail(Error::internal("cannot write factor key file " + path));
  }
  return key;
}

}  // namespace verifyd
