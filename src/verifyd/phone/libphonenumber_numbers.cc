#include "verifyd/phone/libphonenumber_numbers.h"

#include <phonenumbers/phonenumberutil.h>

#include <algorithm>
#include <string>

namespace verifyd {

bool LibPhoneNumbers::isValidE164(std::string_view number) const {
  // E.164: a plus, then 8 to 15 digits, the first not zero. Checked before libphonenumber so
  // that its lenient parser (which accepts punctuation and letters) never sees anything else.
  if (number.size() < 8 || number.size() > 16 || number[0] != '+' || number[1] == '0') return false;
  if (!std::all_of(number.begin() + 1, number.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return false;
  using i18n::phonenumbers::PhoneNumber;
  using i18n::phonenumbers::PhoneNumberUtil;
  const PhoneNumberUtil& util = *PhoneNumberUtil::GetInstance();
  PhoneNumber parsed;
  if (util.Parse(std::string(number), "ZZ", &parsed) != PhoneNumberUtil::NO_PARSING_ERROR)
    return false;
  // IsValidNumber tries every region that shares the country code (about 25 for +1), each a
  // regular expression match. Most numbers belong to the code's main region: when they are
  // valid there they are valid, and only the rest pay for the full search.
  std::string main_region;
  util.GetRegionCodeForCountryCode(parsed.country_code(), &main_region);
  if (util.IsValidNumberForRegion(parsed, main_region)) return true;
  return util.IsValidNumber(parsed);
}

std::string LibPhoneNumbers::regionOf(std::string_view number) const {
  using i18n::phonenumbers::PhoneNumber;
  using i18n::phonenumbers::PhoneNumberUtil;
  const PhoneNumberUtil& util = *PhoneNumberUtil::GetInstance();
  PhoneNumber parsed;
  if (util.Parse(std::string(number), "ZZ", &parsed) != PhoneNumberUtil::NO_PARSING_ERROR)
    return "ZZ";
  std::string region;
  util.GetRegionCodeForNumber(parsed, &region);
  return region.empty() ? "ZZ" : region;
}

}  // namespace verifyd
