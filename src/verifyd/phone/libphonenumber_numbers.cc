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

std::string LibPhoneNumbers::mainRegionOf(std::string_view number) const {
  const auto& util = *i18n::phonenumbers::PhoneNumberUtil::GetInstance();
  if (number.size() < 2 || number[0] != '+') return "ZZ";
  // Calling codes are prefix-free: the first 1 to 3 digits that name one are the code.
  int code = 0;
  for (std::size_t i = 1; i < number.size() && i <= 3; ++i) {
    if (number[i] < '0' || number[i] > '9') return "ZZ";
    code = code * 10 + (number[i] - '0');
    std::string region;
    util.GetRegionCodeForCountryCode(code, &region);
    if (!region.empty() && region != "ZZ" && region != "001") return region;
  }
  return "ZZ";
}

NumberInfo LibPhoneNumbers::describe(std::string_view number,
                                     std::string_view default_region) const {
  using i18n::phonenumbers::PhoneNumber;
  using i18n::phonenumbers::PhoneNumberUtil;
  const PhoneNumberUtil& util = *PhoneNumberUtil::GetInstance();
  NumberInfo info;
  PhoneNumber parsed;
  std::string region = default_region.empty() ? "ZZ" : std::string(default_region);
  switch (util.Parse(std::string(number), region, &parsed)) {
    case PhoneNumberUtil::NO_PARSING_ERROR:
      break;
    case PhoneNumberUtil::INVALID_COUNTRY_CODE_ERROR:
      info.validation_errors = {"INVALID_COUNTRY_CODE"};
      return info;
    case PhoneNumberUtil::TOO_SHORT_NSN:
    case PhoneNumberUtil::TOO_SHORT_AFTER_IDD:
      info.validation_errors = {"TOO_SHORT"};
      return info;
    case PhoneNumberUtil::TOO_LONG_NSN:
      info.validation_errors = {"TOO_LONG"};
      return info;
    default:
      info.validation_errors = {"NOT_A_NUMBER"};
      return info;
  }
  util.Format(parsed, PhoneNumberUtil::E164, &info.e164);
  info.calling_country_code = std::to_string(parsed.country_code());
  util.GetRegionCodeForNumber(parsed, &info.country_code);
  if (info.country_code == "ZZ") info.country_code.clear();
  util.Format(parsed, PhoneNumberUtil::NATIONAL, &info.national_format);
  info.valid = util.IsValidNumber(parsed);
  if (!info.valid) {
    switch (util.IsPossibleNumberWithReason(parsed)) {
      case PhoneNumberUtil::TOO_SHORT:
        info.validation_errors = {"TOO_SHORT"};
        break;
      case PhoneNumberUtil::TOO_LONG:
        info.validation_errors = {"TOO_LONG"};
        break;
      case PhoneNumberUtil::INVALID_COUNTRY_CODE:
        info.validation_errors = {"INVALID_COUNTRY_CODE"};
        break;
      case PhoneNumberUtil::INVALID_LENGTH:
        info.validation_errors = {"INVALID_LENGTH"};
        break;
      default:
        info.validation_errors = {"INVALID_BUT_POSSIBLE"};
    }
    return info;
  }
  switch (util.GetNumberType(parsed)) {
    case PhoneNumberUtil::FIXED_LINE:
      info.line_type = "landline";
      break;
    case PhoneNumberUtil::MOBILE:
      info.line_type = "mobile";
      break;
    case PhoneNumberUtil::TOLL_FREE:
      info.line_type = "tollFree";
      break;
    case PhoneNumberUtil::PREMIUM_RATE:
      info.line_type = "premium";
      break;
    case PhoneNumberUtil::SHARED_COST:
      info.line_type = "sharedCost";
      break;
    case PhoneNumberUtil::VOIP:
      info.line_type = "nonFixedVoip";
      break;
    case PhoneNumberUtil::PERSONAL_NUMBER:
      info.line_type = "personal";
      break;
    case PhoneNumberUtil::PAGER:
      info.line_type = "pager";
      break;
    case PhoneNumberUtil::UAN:
      info.line_type = "uan";
      break;
    case PhoneNumberUtil::VOICEMAIL:
      info.line_type = "voicemail";
      break;
    default:
      info.line_type = "unknown";  // FIXED_LINE_OR_MOBILE, UNKNOWN
  }
  return info;
}

}  // namespace verifyd
