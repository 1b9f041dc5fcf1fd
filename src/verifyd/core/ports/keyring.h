#pragma once
#include <string>
#include <string_view>

#include "verifyd/common/result.h"

namespace verifyd {

// Operations keyed by the server secret (created on first start, mode 0600). Codes and
// credentials are stored only as `mac` outputs; the few secrets verifyd must read back (the
// bootstrap auth token) are `seal`ed. Implementations are thread-safe.
class Keyring {
 public:
  virtual ~Keyring() = default;
  // HMAC-SHA256 over `purpose` and `data`, domain-separated by `purpose`. 32 raw bytes.
  virtual std::string mac(std::string_view purpose, std::string_view data) const = 0;
  // Constant-time equality of two byte strings (false when the sizes differ).
  virtual bool equal(std::string_view a, std::string_view b) const = 0;
  // AES-256-GCM with a fresh nonce: nonce || ciphertext || tag.
  virtual std::string seal(std::string_view plaintext) const = 0;
  // Reverses `seal`; kInternal when the data was not sealed under this key.
  virtual Result<std::string> open(std::string_view sealed) const = 0;
};

}  // namespace verifyd
