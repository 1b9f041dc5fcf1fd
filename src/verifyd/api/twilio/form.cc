#include "verifyd/api/twilio/form.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>

#include "verifyd/common/url.h"

namespace verifyd::twilio {

namespace {

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      int hi = hexValue(s[i + 1]), lo = hexValue(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// JSON responses echo parameters back, so they must be UTF-8: anything else is bad input.
bool isUtf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    int extra = c < 0x80           ? 0
                : (c >> 5) == 0x6  ? 1
                : (c >> 4) == 0xE  ? 2
                : (c >> 3) == 0x1E ? 3
                                   : -1;
    if (extra < 0 || i + static_cast<std::size_t>(extra) >= s.size()) return false;
    std::uint32_t cp = extra == 0 ? c : c & (0x3F >> extra);
    for (int k = 1; k <= extra; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc >> 6) != 0x2) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and values beyond Unicode.
    if ((extra == 1 && cp < 0x80) || (extra == 2 && cp < 0x800) || (extra == 3 && cp < 0x10000) ||
        (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
      return false;
    i += static_cast<std::size_t>(extra) + 1;
  }
  return true;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

std::optional<std::string> Params::get(std::string_view key) const {
  for (const auto& [k, v] : items_)
    if (k == key) return v;
  return std::nullopt;
}

std::vector<std::string> Params::all(std::string_view key) const {
  std::vector<std::string> out;
  for (const auto& [k, v] : items_)
    if (k == key) out.push_back(v);
  return out;
}

Result<std::optional<bool>> Params::getBool(std::string_view key) const {
  auto v = get(key);
  if (!v) return std::optional<bool>();
  if (iequals(*v, "true")) return std::optional<bool>(true);
  if (iequals(*v, "false")) return std::optional<bool>(false);
  return fail(Error::invalid(std::string(key), "must be true or false"));
}

Result<std::optional<int>> Params::getInt(std::string_view key, int lo, int hi) const {
  auto v = get(key);
  if (!v) return std::optional<int>();
  int n = 0;
  auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (ec != std::errc() || end != v->data() + v->size() || n < lo || n > hi)
    return fail(Error::invalid(std::string(key), "must be an integer from " + std::to_string(lo) +
                                                     " to " + std::to_string(hi)));
  return std::optional<int>(n);
}

Result<Params> parseForm(std::string_view text) {
  Params params;
  while (!text.empty()) {
    auto amp = text.find('&');
    std::string_view pair = text.substr(0, amp);
    text = amp == std::string_view::npos ? std::string_view() : text.substr(amp + 1);
    if (pair.empty()) continue;
    auto eq = pair.find('=');
    auto key = decode(pair.substr(0, eq), true);
    auto value =
        decode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1), true);
    if (!key || !value) return fail(Error::invalid("malformed form encoding"));
    if (!isUtf8(*key)) return fail(Error::invalid("malformed form encoding", "not UTF-8"));
    if (!isUtf8(*value)) return fail(Error::invalid(*key, "not UTF-8"));
    params.add(std::move(*key), std::move(*value));
  }
  return params;
}

std::optional<std::string> decodePathSegment(std::string_view segment) {
  return decode(segment, false);
}

std::string urlEncode(std::string_view s) { return percentEncode(s); }

}  // namespace verifyd::twilio
