#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace verifyd::twilio {

// Standard Base64 with padding (RFC 4648 §4), as in HTTP Basic credentials.
std::optional<std::string> base64Decode(std::string_view in);
std::string base64Encode(std::string_view in);

}  // namespace verifyd::twilio
