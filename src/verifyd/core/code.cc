#include "verifyd/core/code.h"

#include <cstdint>
#include <cstring>

namespace verifyd {

std::string deriveCode(const Keyring& keyring, std::string_view seed, int length) {
  std::uint64_t modulus = 1;
  for (int i = 0; i < length; ++i) modulus *= 10;
  // The largest multiple of `modulus` that fits: values at or above it are rejected so that
  // every code is equally likely.
  const std::uint64_t limit = UINT64_MAX - (UINT64_MAX % modulus);
  for (std::uint32_t block = 0;; ++block) {
    std::string input(seed);
    input.append(reinterpret_cast<const char*>(&block), sizeof block);
    std::string mac = keyring.mac("code", input);
    for (std::size_t off = 0; off + 8 <= mac.size(); off += 8) {
      std::uint64_t v;
      std::memcpy(&v, mac.data() + off, 8);
      if (v >= limit) continue;
      std::string code = std::to_string(v % modulus);
      return std::string(static_cast<std::size_t>(length) - code.size(), '0') + code;
    }
  }
}

std::string hashCode(const Keyring& keyring, std::string_view verification_sid,
                     std::string_view code) {
  std::string input(verification_sid);
  input.push_back(':');
  input.append(code);
  return keyring.mac("check", input);
}

std::string renderMessage(const ServiceSettings& service, std::string_view friendly_name,
                          std::string_view code) {
  std::string body = "Your ";
  body.append(friendly_name).append(" verification code is: ").append(code);
  if (service.do_not_share_warning_enabled)
    body += ". Don't share this code with anyone; our employees will never ask for the code.";
  return body;
}

}  // namespace verifyd
