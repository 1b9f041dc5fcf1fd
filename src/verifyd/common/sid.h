#pragma once
#include <string>
#include <string_view>

#include "verifyd/common/random.h"

namespace verifyd {

// A Twilio SID: two upper-case letters and 32 lower-case hex digits (128 random bits).
std::string makeSid(std::string_view prefix, Random& random);
// True when `s` is `prefix` followed by exactly 32 hex digits.
bool isSid(std::string_view s, std::string_view prefix);
std::string toHex(std::string_view bytes);

}  // namespace verifyd
