#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace verifyd {

// A cryptographically secure source of random bytes. Injected so that tests get reproducible
// SIDs and codes. Implementations are thread-safe.
class Random {
 public:
  virtual ~Random() = default;
  virtual void fill(std::uint8_t* out, std::size_t n) = 0;

  std::string bytes(std::size_t n) {
    std::string s(n, '\0');
    fill(reinterpret_cast<std::uint8_t*>(s.data()), n);
    return s;
  }
};

}  // namespace verifyd
