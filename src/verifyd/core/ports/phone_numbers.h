#pragma once
#include <string>
#include <string_view>

namespace verifyd {

// What the core needs to know about phone numbers. Thread-safe.
class PhoneNumbers {
 public:
  virtual ~PhoneNumbers() = default;
  // True for a valid number in E.164 form (`+` and digits, valid for its country).
  virtual bool isValidE164(std::string_view number) const = 0;
  // The ISO 3166-1 alpha-2 region of a valid E.164 number ("US"), or "ZZ" when unknown.
  virtual std::string regionOf(std::string_view number) const = 0;
};

}  // namespace verifyd
