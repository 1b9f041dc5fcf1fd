#include "verifyd/common/sid.h"

namespace verifyd {

std::string toHex(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

std::string makeSid(std::string_view prefix, Random& random) {
  return std::string(prefix) + toHex(random.bytes(16));
}

std::string makeOrderedSid(std::string_view prefix, std::int64_t now, Random& random) {
  std::uint32_t t = static_cast<std::uint32_t>(now);
  char be[4] = {static_cast<char>(t >> 24), static_cast<char>(t >> 16), static_cast<char>(t >> 8),
                static_cast<char>(t)};
  return std::string(prefix) + toHex(std::string_view(be, 4)) + toHex(random.bytes(12));
}

bool isSid(std::string_view s, std::string_view prefix) {
  if (s.size() != prefix.size() + 32 || s.substr(0, prefix.size()) != prefix) return false;
  for (char c : s.substr(prefix.size())) {
    bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    if (!hex) return false;
  }
  return true;
}

}  // namespace verifyd
