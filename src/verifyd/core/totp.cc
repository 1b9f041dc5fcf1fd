#include "verifyd/core/totp.h"

#include <cctype>

#include "verifyd/common/url.h"

namespace verifyd {

namespace {
// Equal strings of equal length, in time that depends on the length only.
bool constantTimeEqual(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}
}  // namespace

std::string totpCode(const FactorCrypto& crypto, const TotpConfig& config, std::string_view key,
                     std::int64_t step) {
  if (config.code_length <= 0) return {};
  char counter[8];
  auto value = static_cast<std::uint64_t>(step);
  for (int i = 7; i >= 0; --i) {
    counter[i] = static_cast<char>(value & 0xff);
    value >>= 8;
  }
  std::string mac = crypto.hmac(config.alg, key, std::string_view(counter, sizeof counter));
  if (mac.size() < 20) return {};  // unknown algorithm: no code can match
  auto byte = [&](std::size_t i) {
    return static_cast<std::uint32_t>(static_cast<unsigned char>(mac[i]));
  };
  std::size_t offset = byte(mac.size() - 1) & 0x0f;
  std::uint32_t binary = ((byte(offset) & 0x7f) << 24) | (byte(offset + 1) << 16) |
                         (byte(offset + 2) << 8) | byte(offset + 3);
  std::string code(static_cast<std::size_t>(config.code_length), '0');
  for (std::size_t i = code.size(); i-- > 0 && binary > 0;) {
    code[i] = static_cast<char>('0' + binary % 10);
    binary /= 10;
  }
  return code;
}

std::optional<std::int64_t> totpMatch(const FactorCrypto& crypto, const TotpConfig& config,
                                      std::string_view key, std::string_view code, UnixTime now,
                                      std::int64_t last_step) {
  if (config.time_step <= 0 || config.code_length <= 0) return std::nullopt;
  if (code.size() != static_cast<std::size_t>(config.code_length)) return std::nullopt;
  std::int64_t current = now / config.time_step;
  if (now < 0 && now % config.time_step != 0) --current;  // floor, not truncation
  int skew = config.skew > 0 ? config.skew : 0;
  for (int i = 0; i <= 2 * skew; ++i) {
    // 0, -1, +1, -2, +2, ...
    std::int64_t delta = (i + 1) / 2;
    std::int64_t step = current + (i % 2 == 1 ? -delta : delta);
    if (step < 0 || step <= last_step) continue;
    if (constantTimeEqual(totpCode(crypto, config, key, step), code)) return step;
  }
  return std::nullopt;
}

std::string otpauthUri(std::string_view issuer, std::string_view account,
                       std::string_view secret_base32, const TotpConfig& config) {
  std::string alg;
  for (char c : config.alg)
    alg.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  std::string issuer_enc = percentEncode(issuer);
  std::string uri = "otpauth://totp/";
  uri.append(issuer_enc).append(":").append(percentEncode(account));
  uri.append("?secret=").append(secret_base32);
  uri.append("&issuer=").append(issuer_enc);
  uri.append("&algorithm=").append(alg);
  uri.append("&digits=").append(std::to_string(config.code_length));
  uri.append("&period=").append(std::to_string(config.time_step));
  return uri;
}

}  // namespace verifyd
