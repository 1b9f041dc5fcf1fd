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
  return util.IsValidNumber(parsed);
}

}  // namespace verifyd
