#pragma once
#include <string>

#include "verifyd/common/random.h"
#include "verifyd/common/result.h"
#include "verifyd/core/ports/keyring.h"

namespace verifyd {

// Random bytes from OpenSSL's CSPRNG (RAND_bytes). Aborts if the CSPRNG fails: no code may be
// drawn from a weak source.
class OsRandom final : public Random {
 public:
  void fill(std::uint8_t* out, std::size_t n) override;
};

class OpenSslKeyring final : public Keyring {
 public:
  explicit OpenSslKeyring(std::string secret);  // 32 bytes
  std::string mac(std::string_view purpose, std::string_view data) const override;
  bool equal(std::string_view a, std::string_view b) const override;
  std::string seal(std::string_view plaintext) const override;
  Result<std::string> open(std::string_view sealed) const override;

 private:
  std::string secret_;
  std::string seal_key_;
};

// Reads the 32-byte server secret from `path`, creating it (mode 0600, O_EXCL) when absent.
Result<std::string> loadOrCreateSecret(const std::string& path, Random& random);

}  // namespace verifyd
