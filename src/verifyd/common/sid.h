#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "verifyd/common/random.h"

namespace verifyd {

// A Twilio SID: two upper-case letters and 32 lower-case hex digits (128 random bits).
std::string makeSid(std::string_view prefix, Random& random);
// A SID whose first 8 hex digits are `now` (seconds, big-endian) and whose other 24 are random
// (96 bits): still unguessable, but new SIDs sort after old ones, so inserting them touches the
// right edge of the SID index instead of a random page (fewer pages written per commit).
std::string makeOrderedSid(std::string_view prefix, std::int64_t now, Random& random);
// True when `s` is `prefix` followed by exactly 32 hex digits.
bool isSid(std::string_view s, std::string_view prefix);
std::string toHex(std::string_view bytes);

}  // namespace verifyd
