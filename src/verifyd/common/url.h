#pragma once
#include <string>
#include <string_view>

namespace verifyd {

// Percent-encodes everything but RFC 3986's unreserved characters (A-Z a-z 0-9 - _ . ~): safe in
// a query string value and in a form body.
std::string percentEncode(std::string_view value);

}  // namespace verifyd
