#pragma once
// Twilio's JSON shapes: snake_case keys in the spec's order, ISO 8601 dates, absolute URLs.
#include <nlohmann/json.hpp>
#include <string>

#include "verifyd/core/factors.h"
#include "verifyd/core/model.h"
#include "verifyd/delivery/templates.h"

namespace verifyd::twilio {

using ojson = nlohmann::ordered_json;

// `base` is the public URL without a trailing slash, e.g. `http://127.0.0.1:8080`.
ojson encodeService(const Service& s, const std::string& base);
// The hot responses, written directly as JSON text (see json_writer.h).
std::string encodeVerification(const Verification& v, const std::string& base);
std::string encodeVerificationCheck(const Verification& v);
ojson encodeOutboxMessage(const OutboxMessage& m);
ojson encodeRateLimit(const RateLimit& r, const std::string& base);
ojson encodeBucket(const Bucket& b, const std::string& base);
ojson encodeSafeNumber(const SafeNumber& n, const std::string& base);
ojson encodeGeoPermission(const GeoPermission& p);
ojson encodeAttempt(const DeliveryAttempt& a, const std::string& base);
ojson encodeAttemptsSummary(const AttemptSummary& s, const std::string& base);
ojson encodeMessagingConfig(const MessagingConfiguration& m, const std::string& base);
ojson encodeTemplate(const MessageTemplate& t, const std::string& account_sid);

// Factors (Entities, Factors, Challenges, Notifications, Access Tokens, Webhooks).
ojson encodeEntity(const Entity& e, const std::string& base);
ojson encodeFactor(const Factor& f, const std::string& base);
// The create response: the factor with its binding (the only time it is shown) and `options`.
ojson encodeNewFactor(const NewFactor& f, const std::string& base);
ojson encodeChallenge(const Challenge& c, bool include_date, const std::string& base);
ojson encodeNotification(const Notification& n);
ojson encodeAccessToken(const AccessToken& t, const std::string& base);
ojson encodeWebhook(const Webhook& w, const std::string& base);

}  // namespace verifyd::twilio
