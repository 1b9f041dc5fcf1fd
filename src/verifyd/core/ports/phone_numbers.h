#pragma once
#include <string_view>

namespace verifyd {

// What the core needs to know about phone numbers. Thread-safe.
class PhoneNumbers {
 public:
  virtual ~PhoneNumbers() = default;
  // True for a valid number in E.164 form (`+` and digits, valid for its country).
  virtual bool isValidE164(std::string_view number) const = 0;
};

}  // namespace verifyd
