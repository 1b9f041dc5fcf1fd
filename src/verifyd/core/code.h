#pragma once
// One-time codes: drawn, hashed and rendered. No code is ever stored in plain text.
#include <string>
#include <string_view>

#include "verifyd/core/model.h"
#include "verifyd/core/ports/keyring.h"

namespace verifyd {

// The code of a verification whose code verifyd generated: `length` decimal digits drawn
// uniformly (rejection sampling, no modulo bias) from HMAC-SHA256 under the server secret of
// `seed`, a 128-bit value from the CSPRNG. Deriving it again on a resend delivers the same code
// without ever storing it; without the server secret the seed reveals nothing.
std::string deriveCode(const Keyring& keyring, std::string_view seed, int length);

// What is stored to check a code: an HMAC of the verification SID and the code.
std::string hashCode(const Keyring& keyring, std::string_view verification_sid,
                     std::string_view code);

// The text delivered: `Your {friendly_name} verification code is: {code}`, plus the do-not-share
// sentence when the service enables it.
std::string renderMessage(const ServiceSettings& service, std::string_view friendly_name,
                          std::string_view code);

}  // namespace verifyd
