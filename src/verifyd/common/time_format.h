#pragma once
#include <optional>
#include <string>
#include <string_view>

#include "verifyd/common/clock.h"

namespace verifyd {

// `YYYY-MM-DDTHH:MM:SSZ`, the only date format both official SDKs parse into typed dates.
std::string formatIso8601(UnixTime t);
std::optional<UnixTime> parseIso8601(std::string_view s);

}  // namespace verifyd
