#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "verifyd/common/random.h"

namespace verifyd {

// A Twilio SID: two upper-case letters and 32 lower-case hex digits (128 random bits).
std::string makeSid(std::string_view prefix, Random& random);
// A SID of `now` (seconds, 8 hex digits), a process-wide counter (8 hex digits, from a random
// start) and 64 random bits (16 hex digits): unguessable, and SIDs made one after another sort
// one after another, so inserting them touches the right edge of each index on them instead of
// a random page of the current second (fewer pages written per commit).
std::string makeOrderedSid(std::string_view prefix, std::int64_t now, Random& random);
// True when `s` is `prefix` followed by exactly 32 hex digits.
bool isSid(std::string_view s, std::string_view prefix);
std::string toHex(std::string_view bytes);

}  // namespace verifyd
