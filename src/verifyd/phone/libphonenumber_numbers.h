#pragma once
#include "verifyd/core/ports/phone_numbers.h"

namespace verifyd {

// Phone number knowledge from Google's libphonenumber (offline metadata).
class LibPhoneNumbers final : public PhoneNumbers {
 public:
  bool isValidE164(std::string_view number) const override;
  std::string regionOf(std::string_view number) const override;
  std::string mainRegionOf(std::string_view number) const override;
  NumberInfo describe(std::string_view number, std::string_view default_region) const override;
};

}  // namespace verifyd
