#pragma once
// TOTP (RFC 6238 over RFC 4226's HOTP): the codes of a factor's seed, their check with clock
// skew and without replay, and the otpauth:// URI authenticator apps scan.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "verifyd/common/clock.h"
#include "verifyd/core/factor_model.h"
#include "verifyd/core/ports/factor_crypto.h"

namespace verifyd {

// The code of time step `step` (the HOTP counter): HMAC-<config.alg> of `key` (the raw seed)
// over the big-endian 64-bit step, RFC 4226 dynamic truncation, `config.code_length` decimal
// digits with leading zeros. Empty when the HMAC algorithm is unknown.
std::string totpCode(const FactorCrypto& crypto, const TotpConfig& config, std::string_view key,
                     std::int64_t step);

// The time step whose code equals `code`, among now / time_step and the `config.skew` steps on
// either side (the current step first, then -1, +1, -2, +2). A step <= `last_step` (the newest
// already accepted) never matches again: no replay. Codes are compared in constant time.
std::optional<std::int64_t> totpMatch(const FactorCrypto& crypto, const TotpConfig& config,
                                      std::string_view key, std::string_view code, UnixTime now,
                                      std::int64_t last_step);

// otpauth://totp/<issuer>:<account>?secret=<S>&issuer=<issuer>&algorithm=SHA1&digits=6&period=30
// with issuer and account percent-encoded and the algorithm in upper case.
std::string otpauthUri(std::string_view issuer, std::string_view account,
                       std::string_view secret_base32, const TotpConfig& config);

}  // namespace verifyd
