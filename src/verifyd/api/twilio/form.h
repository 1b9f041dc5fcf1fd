#pragma once
// application/x-www-form-urlencoded as the Twilio SDKs send it: `+` and `%20` are spaces,
// keys may repeat, booleans come in any case (`true` from Node, `True` from Python).
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "verifyd/common/result.h"

namespace verifyd::twilio {

class Params {
 public:
  void add(std::string key, std::string value) {
    items_.emplace_back(std::move(key), std::move(value));
  }
  // The first value of `key`, if present.
  std::optional<std::string> get(std::string_view key) const;
  std::vector<std::string> all(std::string_view key) const;
  bool has(std::string_view key) const { return get(key).has_value(); }

  // Typed getters: nullopt when absent; kInvalidArgument naming `key` when malformed.
  Result<std::optional<bool>> getBool(std::string_view key) const;
  Result<std::optional<int>> getInt(std::string_view key, int lo, int hi) const;
  const std::vector<std::pair<std::string, std::string>>& items() const { return items_; }

 private:
  std::vector<std::pair<std::string, std::string>> items_;
};

// Parses a form body or query string. kInvalidArgument on a bad %-escape.
Result<Params> parseForm(std::string_view text);
// Decodes %-escapes in one path segment; `+` stays a plus (Node sends `+1555…` literally).
std::optional<std::string> decodePathSegment(std::string_view segment);
// Percent-encodes for a query string value.
std::string urlEncode(std::string_view s);

}  // namespace verifyd::twilio
