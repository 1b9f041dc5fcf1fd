#include "verifyd/core/protection.h"

#include <cctype>

#include "verifyd/common/sid.h"

namespace verifyd {

std::string fraudPrefix(const std::string& e164) {
  return e164.size() > 6 ? e164.substr(0, e164.size() - 3) : e164;
}

std::optional<FraudCheck> fraudPolicy(const std::string& level) {
  FraudCheck f;
  if (level == "basic") {
    f.min_unconverted = 30;
    f.factor = 0.2;
  } else if (level == "standard") {
    f.min_unconverted = 15;
    f.factor = 0.35;
  } else if (level == "max") {
    f.min_unconverted = 8;
    f.factor = 0.5;
  } else {
    return std::nullopt;
  }
  return f;
}

bool geoControlled(const std::string& channel) { return channel == "sms" || channel == "call"; }

bool geoAllowed(const std::vector<GeoPermission>& account_rules,
                const std::set<std::string>& server_blocked, const std::string& channel,
                const std::string& region) {
  for (const auto& rule : account_rules)
    if (rule.channel == channel && rule.country == region) return rule.allowed;
  return server_blocked.count(channel + ":" + region) == 0;
}

Protection::Protection(ProtectionStore& store, const PhoneNumbers& phones, Clock& clock,
                       Random& random)
    : store_(store), phones_(phones), clock_(clock), random_(random) {}

Result<SafeNumber> Protection::addSafeNumber(const std::string& account_sid,
                                             const std::string& number) {
  if (number.empty()) return fail(Error::missing("PhoneNumber"));
  if (!phones_.isValidE164(number))
    return fail(Error::invalid("PhoneNumber", "not a valid phone number in E.164 format"));
  return store_.addSafeNumber(
      SafeNumber{makeSid("GN", random_), account_sid, number, clock_.now()});
}

Result<SafeNumber> Protection::fetchSafeNumber(const std::string& account_sid,
                                               const std::string& number) {
  auto found = store_.getSafeNumber(account_sid, number);
  if (!found) return fail(found.error());
  if (!*found) return fail(Error::notFound());
  return std::move(**found);
}

Status Protection::removeSafeNumber(const std::string& account_sid, const std::string& number) {
  return store_.removeSafeNumber(account_sid, number);
}

Result<GeoPermission> Protection::setGeoPermission(const std::string& account_sid,
                                                   const std::string& channel,
                                                   const std::string& country,
                                                   const std::string& permission) {
  if (channel.empty()) return fail(Error::missing("Channel"));
  if (!geoControlled(channel)) return fail(Error::invalid("Channel", "sms or call"));
  if (country.size() != 2 || !std::isupper(static_cast<unsigned char>(country[0])) ||
      !std::isupper(static_cast<unsigned char>(country[1])))
    return fail(Error::invalid("Country", "an ISO 3166-1 alpha-2 code such as US"));
  if (permission != "allow" && permission != "block")
    return fail(Error::invalid("Permission", "allow or block"));
  GeoPermission p{channel, country, permission == "allow", clock_.now()};
  if (auto st = store_.setGeoPermission(account_sid, p); !st) return fail(st.error());
  return p;
}

Result<std::vector<GeoPermission>> Protection::geoPermissions(const std::string& account_sid) {
  return store_.geoPermissions(account_sid);
}

Result<std::vector<FraudBlock>> Protection::fraudBlocks(const std::string& account_sid) {
  return store_.fraudBlocks(account_sid, clock_.now());
}

Status Protection::liftFraudBlock(const std::string& account_sid, const std::string& prefix) {
  return store_.liftFraudBlock(account_sid, prefix);
}

}  // namespace verifyd
