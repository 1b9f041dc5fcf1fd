#pragma once
// Safe List numbers and geo permissions: what an account's operator sets to keep destinations
// open or shut. Enforcement happens when a verification starts (Verifier::startAsync).
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "verifyd/common/clock.h"
#include "verifyd/common/random.h"
#include "verifyd/common/result.h"
#include "verifyd/core/ports/phone_numbers.h"
#include "verifyd/core/ports/stores.h"

namespace verifyd {

// Fraud Guard's unit: a destination's country code and leading digits (the number without its
// last three digits), where SMS pumping shows as traffic to consecutive numbers.
std::string fraudPrefix(const std::string& e164);
// The thresholds of a Fraud Guard level (basic, standard, max); nullopt for off or unknown.
std::optional<FraudCheck> fraudPolicy(const std::string& level);

// The channels geo permissions cover (Twilio: SMS and voice).
bool geoControlled(const std::string& channel);

// Whether a start on `channel` to `region` is allowed for an account: the account's own rule
// wins; without one, `server_blocked` ("sms:CU", "call:KP", …, from the server's settings) decides.
bool geoAllowed(const std::vector<GeoPermission>& account_rules,
                const std::set<std::string>& server_blocked, const std::string& channel,
                const std::string& region);

class Protection {
 public:
  Protection(ProtectionStore& store, const PhoneNumbers& phones, Clock& clock, Random& random);

  // kInvalidArgument (PhoneNumber) unless a valid E.164 number. Adding twice returns the entry.
  Result<SafeNumber> addSafeNumber(const std::string& account_sid, const std::string& number);
  Result<SafeNumber> fetchSafeNumber(const std::string& account_sid, const std::string& number);
  Status removeSafeNumber(const std::string& account_sid, const std::string& number);

  // channel `sms` or `call`; country ISO alpha-2 (upper case); permission `allow` or `block`.
  Result<GeoPermission> setGeoPermission(const std::string& account_sid, const std::string& channel,
                                         const std::string& country, const std::string& permission);
  Result<std::vector<GeoPermission>> geoPermissions(const std::string& account_sid);

  // Fraud Guard's blocked prefixes in force, and lifting one (kNotFound when not blocked).
  Result<std::vector<FraudBlock>> fraudBlocks(const std::string& account_sid);
  Status liftFraudBlock(const std::string& account_sid, const std::string& prefix);

 private:
  ProtectionStore& store_;
  const PhoneNumbers& phones_;
  Clock& clock_;
  Random& random_;
};

}  // namespace verifyd
