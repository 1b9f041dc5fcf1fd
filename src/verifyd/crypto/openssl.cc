#include "verifyd/crypto/openssl.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>

namespace verifyd {

void OsRandom::fill(std::uint8_t* out, std::size_t n) {
  if (RAND_bytes(out, static_cast<int>(n)) != 1) std::abort();
}

namespace {
constexpr std::size_t kNonce = 12, kTag = 16;

std::string hmac(std::string_view key, std::string_view a, std::string_view b) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  // One-shot HMAC over purpose || 0 || data; the zero byte keeps purposes from colliding.
  std::string msg;
  msg.reserve(a.size() + 1 + b.size());
  msg.append(a).push_back('\0');
  msg.append(b);
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}
}  // namespace

OpenSslKeyring::OpenSslKeyring(std::string secret)
    : secret_(std::move(secret)), seal_key_(hmac(secret_, "seal-key", "")) {}

std::string OpenSslKeyring::mac(std::string_view purpose, std::string_view data) const {
  return hmac(secret_, purpose, data);
}

bool OpenSslKeyring::equal(std::string_view a, std::string_view b) const {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string OpenSslKeyring::seal(std::string_view plaintext) const {
  std::string out(kNonce + plaintext.size() + kTag, '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  if (RAND_bytes(o, kNonce) != 1) std::abort();
  std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> ctx(EVP_CIPHER_CTX_new(),
                                                                      EVP_CIPHER_CTX_free);
  int len = 0;
  EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr,
                     reinterpret_cast<const unsigned char*>(seal_key_.data()), o);
  EVP_EncryptUpdate(ctx.get(), o + kNonce, &len,
                    reinterpret_cast<const unsigned char*>(plaintext.data()),
                    static_cast<int>(plaintext.size()));
  EVP_EncryptFinal_ex(ctx.get(), o + kNonce + len, &len);
  EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTag, o + kNonce + plaintext.size());
  return out;
}

Result<std::string> OpenSslKeyring::open(std::string_view sealed) const {
  if (sealed.size() < kNonce + kTag) return fail(Error::internal("sealed value too short"));
  const auto* s = reinterpret_cast<const unsigned char*>(sealed.data());
  std::size_t n = sealed.size() - kNonce - kTag;
  std::string out(n, '\0');
  std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> ctx(EVP_CIPHER_CTX_new(),
                                                                      EVP_CIPHER_CTX_free);
  int len = 0;
  EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr,
                     reinterpret_cast<const unsigned char*>(seal_key_.data()), s);
  EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &len, s + kNonce,
                    static_cast<int>(n));
  EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTag,
                      const_cast<unsigned char*>(s + kNonce + n));
  if (EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(out.data()) + len, &len) != 1)
    return fail(Error::internal("sealed value does not match the server secret"));
  return out;
}

Result<std::string> loadOrCreateSecret(const std::string& path, Random& random) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {
    fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return fail(Error::internal("cannot create " + path + ": " + std::strerror(errno)));
    std::string secret = random.bytes(32);
    bool ok = ::write(fd, secret.data(), secret.size()) == 32 && ::fsync(fd) == 0;
    ::close(fd);
    if (!ok) return fail(Error::internal("cannot write " + path));
    return secret;
  }
  if (fd < 0) return fail(Error::internal("cannot open " + path + ": " + std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd, &st) == 0 && (st.st_mode & 077) != 0) {
    ::close(fd);
    return fail(Error::internal(path + " must not be readable by group or others (chmod 600)"));
  }
  std::string secret(64, '\0');
  ssize_t n = ::read(fd, secret.data(), secret.size());
  ::close(fd);
  if (n != 32) return fail(Error::internal(path + " is not a 32-byte server secret"));
  secret.resize(32);
  return secret;
}

}  // namespace verifyd
