#pragma once
// Base32 (RFC 4648 §6), the encoding of TOTP seeds in otpauth:// URIs, authenticator apps and
// Twilio's `binding.secret`.
#include <optional>
#include <string>
#include <string_view>

namespace verifyd {

// Upper-case A-Z2-7 without `=` padding, as authenticator apps show a seed.
std::string base32Encode(std::string_view bytes);

// The bytes of `text`: letters in either case; spaces (and other ASCII whitespace) and `=`
// padding are ignored wherever they appear. nullopt on any other character, or when the number
// of symbols is one no encoder produces (1, 3 or 6 left over after the last group of 8).
std::optional<std::string> base32Decode(std::string_view text);

}  // namespace verifyd
