#include "verifyd/api/twilio/encode.h"

#include "verifyd/api/twilio/json_writer.h"
#include "verifyd/common/time_format.h"

namespace verifyd::twilio {

namespace {
template <class T>
ojson orNull(const std::optional<T>& v) {
  return v ? ojson(*v) : ojson(nullptr);
}

// Twilio's examples write some channels in upper case inside send_code_attempts.
std::string attemptChannel(const std::string& channel) {
  if (channel == "sms" || channel == "call" || channel == "email") {
    std::string up = channel;
    for (auto& c : up) c = static_cast<char>(c - 'a' + 'A');
    return up;
  }
  return channel;
}
}  // namespace

ojson encodeService(const Service& s, const std::string& base) {
  const ServiceSettings& t = s.settings;
  const std::string url = base + "/v2/Services/" + s.sid;
  ojson j;
  j["sid"] = s.sid;
  j["account_sid"] = s.account_sid;
  j["friendly_name"] = t.friendly_name;
  j["code_length"] = t.code_length;
  j["lookup_enabled"] = t.lookup_enabled;
  j["psd2_enabled"] = t.psd2_enabled;
  j["skip_sms_to_landlines"] = t.skip_sms_to_landlines;
  j["dtmf_input_required"] = t.dtmf_input_required;
  j["tts_name"] = orNull(t.tts_name);
  j["do_not_share_warning_enabled"] = t.do_not_share_warning_enabled;
  j["custom_code_enabled"] = t.custom_code_enabled;
  j["push"] = ojson{{"include_date", t.push_include_date},
                    {"apn_credential_sid", orNull(t.push_apn_credential_sid)},
                    {"fcm_credential_sid", orNull(t.push_fcm_credential_sid)}};
  j["totp"] = ojson{{"issuer", orNull(t.totp_issuer)},
                    {"time_step", t.totp_time_step},
                    {"code_length", t.totp_code_length},
                    {"skew", t.totp_skew}};
  j["default_template_sid"] = orNull(t.default_template_sid);
  j["whatsapp"] = ojson{{"msg_service_sid", orNull(t.whatsapp_msg_service_sid)},
                        {"from", orNull(t.whatsapp_from)}};
  j["passkeys"] = ojson{{"relying_party", ojson{{"id", orNull(t.passkeys_rp_id)},
                                                {"name", orNull(t.passkeys_rp_name)},
                                                {"origins", orNull(t.passkeys_rp_origins)}}},
                        {"authenticator_attachment", orNull(t.passkeys_authenticator_attachment)},
                        {"discoverable_credentials", orNull(t.passkeys_discoverable_credentials)},
                        {"user_verification", orNull(t.passkeys_user_verification)}};
  j["verify_event_subscription_enabled"] = t.verify_event_subscription_enabled;
  j["date_created"] = formatIso8601(s.date_created);
  j["date_updated"] = formatIso8601(s.date_updated);
  j["url"] = url;
  j["links"] = ojson{{"verification_checks", url + "/VerificationCheck"},
                     {"verifications", url + "/Verifications"},
                     {"rate_limits", url + "/RateLimits"},
                     {"messaging_configurations", url + "/MessagingConfigurations"},
                     {"entities", url + "/Entities"},
                     {"webhooks", url + "/Webhooks"},
                     {"access_tokens", url + "/AccessTokens"}};
  return j;
}

namespace {
// The fields a verification and a check of it share, in the spec's order.
JsonWriter& writeHead(JsonWriter& w, const Verification& v) {
  return w.field("sid", v.sid)
      .field("service_sid", v.service_sid)
      .field("account_sid", v.account_sid)
      .field("to", v.to)
      .field("channel", v.channel)
      .field("status", v.status)
      .field("valid", v.status == status::kApproved);
}
}  // namespace

std::string encodeVerification(const Verification& v, const std::string& base) {
  JsonWriter w;
  writeHead(w.begin(), v)
      .raw("lookup", v.lookup_type ? "{\"carrier\":{\"mobile_country_code\":null,"
                                     "\"mobile_network_code\":null,\"name\":null,\"type\":\"" +
                                         *v.lookup_type + "\",\"error_code\":null}}"
                                   : std::string("{}"))
      .field("amount", v.amount)
      .field("payee", v.payee)
      .beginArray("send_code_attempts");
  for (const auto& a : v.send_attempts)
    w.beginObject()
        .field("time", formatIso8601(a.time))
        .field("channel", attemptChannel(a.channel))
        .field("attempt_sid", a.attempt_sid)
        .end();
  w.endArray()
      .field("date_created", formatIso8601(v.date_created))
      .field("date_updated", formatIso8601(v.date_updated))
      .null("sna")
      .field("url", base + "/v2/Services/" + v.service_sid + "/Verifications/" + v.sid)
      .end();
  return w.take();
}

std::string encodeVerificationCheck(const Verification& v) {
  JsonWriter w;
  writeHead(w.begin(), v)
      .field("amount", v.amount)
      .field("payee", v.payee)
      .raw("sna_attempts_error_codes", "[]")
      .field("date_created", formatIso8601(v.date_created))
      .field("date_updated", formatIso8601(v.date_updated))
      .end();
  return w.take();
}

ojson encodeOutboxMessage(const OutboxMessage& m) {
  ojson j;
  j["sid"] = m.sid;
  j["to"] = m.to;
  j["channel"] = m.channel;
  j["body"] = m.body;
  j["code"] = m.code;
  j["service_sid"] = m.service_sid;
  j["verification_sid"] = m.verification_sid;
  j["date_created"] = formatIso8601(m.date_created);
  return j;
}

ojson encodeRateLimit(const RateLimit& r, const std::string& base) {
  const std::string url = base + "/v2/Services/" + r.service_sid + "/RateLimits/" + r.sid;
  ojson j;
  j["sid"] = r.sid;
  j["service_sid"] = r.service_sid;
  j["account_sid"] = r.account_sid;
  j["unique_name"] = r.unique_name;
  j["description"] = orNull(r.description);
  j["date_created"] = formatIso8601(r.date_created);
  j["date_updated"] = formatIso8601(r.date_updated);
  j["url"] = url;
  j["links"] = ojson{{"buckets", url + "/Buckets"}};
  return j;
}

ojson encodeBucket(const Bucket& b, const std::string& base) {
  ojson j;
  j["sid"] = b.sid;
  j["rate_limit_sid"] = b.rate_limit_sid;
  j["service_sid"] = b.service_sid;
  j["account_sid"] = b.account_sid;
  j["max"] = b.max;
  j["interval"] = b.interval;
  j["date_created"] = formatIso8601(b.date_created);
  j["date_updated"] = formatIso8601(b.date_updated);
  j["url"] = base + "/v2/Services/" + b.service_sid + "/RateLimits/" + b.rate_limit_sid +
             "/Buckets/" + b.sid;
  return j;
}

ojson encodeSafeNumber(const SafeNumber& n, const std::string& base) {
  ojson j;
  j["sid"] = n.sid;
  j["phone_number"] = n.phone_number;
  // Twilio's example keeps the `+` raw in the path.
  j["url"] = base + "/v2/SafeList/Numbers/" + n.phone_number;
  return j;
}

ojson encodeGeoPermission(const GeoPermission& p) {
  ojson j;
  j["channel"] = p.channel;
  j["country"] = p.country;
  j["permission"] = p.allowed ? "allow" : "block";
  j["date_updated"] = formatIso8601(p.date_updated);
  return j;
}

ojson encodeAttempt(const DeliveryAttempt& a, const std::string& base) {
  auto orNull = [](const std::string& s) { return s.empty() ? ojson(nullptr) : ojson(s); };
  ojson j;
  j["sid"] = a.sid;
  j["account_sid"] = a.account_sid;
  j["service_sid"] = a.service_sid;
  j["verification_sid"] = a.verification_sid;
  j["date_created"] = formatIso8601(a.date_created);
  j["date_updated"] = formatIso8601(a.date_updated);
  j["conversion_status"] = a.converted ? "converted" : "unconverted";
  j["channel"] = a.channel;
  j["price"] = nullptr;  // verifyd does not price messages
  ojson d;
  d["verification_sid"] = a.verification_sid;
  d["to"] = a.to;
  d["status"] = a.converted ? "confirmed" : "unconfirmed";
  d["message_status"] = a.message_status;
  d["error_code"] = orNull(a.error_code);
  d["error_message"] = orNull(a.error_message);
  d["country"] = orNull(a.country);
  d["code_length"] = a.code_length;
  d["locale"] = a.locale;
  d["provider"] = orNull(a.provider);
  d["provider_message_id"] = orNull(a.provider_message_id);
  d["tries"] = a.tries;
  d["outcome_unknown"] = a.outcome_unknown;
  j["channel_data"] = std::move(d);
  j["url"] = base + "/v2/Attempts/" + a.sid;
  return j;
}

ojson encodeAttemptsSummary(const AttemptSummary& s, const std::string& base) {
  ojson j;
  j["total_attempts"] = s.total;
  j["total_converted"] = s.converted;
  j["total_unconverted"] = s.total - s.converted;
  // Twilio sends the rate as a decimal string ("81.818181818").
  std::string rate = "0";
  if (s.total > 0) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.9f",
                  100.0 * static_cast<double>(s.converted) / static_cast<double>(s.total));
    rate = buf;
    while (rate.back() == '0') rate.pop_back();
    if (rate.back() == '.') rate.pop_back();
  }
  j["conversion_rate_percentage"] = rate;
  j["url"] = base + "/v2/Attempts/Summary";
  return j;
}

ojson encodeMessagingConfig(const MessagingConfiguration& m, const std::string& base) {
  ojson j;
  j["account_sid"] = m.account_sid;
  j["service_sid"] = m.service_sid;
  j["country"] = m.country;
  j["messaging_service_sid"] = m.messaging_service_sid;
  j["date_created"] = formatIso8601(m.date_created);
  j["date_updated"] = formatIso8601(m.date_updated);
  j["url"] = base + "/v2/Services/" + m.service_sid + "/MessagingConfigurations/" + m.country;
  return j;
}

ojson encodeTemplate(const MessageTemplate& t, const std::string& account_sid) {
  // Built-in templates exist since verifyd's first release: one fixed date.
  static const std::string kSince = "2026-01-01T00:00:00Z";
  ojson j;
  j["sid"] = t.sid;
  j["account_sid"] = account_sid;
  j["friendly_name"] = t.friendly_name;
  j["channels"] = t.channels;
  ojson translations = ojson::object();
  for (const auto& [locale, text] : t.translations) {
    ojson tr;
    tr["is_default_translation"] = locale == "en";
    tr["status"] = "approved";
    tr["locale"] = locale;
    tr["text"] = text;
    tr["date_updated"] = kSince;
    tr["date_created"] = kSince;
    translations[locale] = std::move(tr);
  }
  j["translations"] = std::move(translations);
  return j;
}

// ---- factors ----------------------------------------------------------------------------------

namespace {
std::string entityUrl(const std::string& base, const std::string& service_sid,
                      const std::string& identity) {
  return base + "/v2/Services/" + service_sid + "/Entities/" + identity;
}

ojson orNullIfEmpty(const std::string& s) { return s.empty() ? ojson(nullptr) : ojson(s); }

ojson factorConfig(const Factor& f) {
  if (f.factor_type == "totp")
    return ojson{{"alg", f.totp.alg},
                 {"skew", f.totp.skew},
                 {"code_length", f.totp.code_length},
                 {"time_step", f.totp.time_step}};
  if (f.factor_type == "push")
    return ojson{{"sdk_version", orNullIfEmpty(f.push.sdk_version)},
                 {"app_id", orNullIfEmpty(f.push.app_id)},
                 {"notification_platform", orNullIfEmpty(f.push.notification_platform)},
                 {"notification_token", orNullIfEmpty(f.push.notification_token)}};
  return nullptr;
}

// The factor's fields after `identity`, in the spec's order (shared by factor and new_factor).
void factorTail(ojson& j, const Factor& f, const std::string& base) {
  j["date_created"] = formatIso8601(f.date_created);
  j["date_updated"] = formatIso8601(f.date_updated);
  j["friendly_name"] = f.friendly_name;
  j["status"] = f.status;
  j["factor_type"] = f.factor_type;
  j["config"] = factorConfig(f);
  j["metadata"] = jsonObjectOrNull(f.metadata);
  j["url"] = entityUrl(base, f.service_sid, f.identity) + "/Factors/" + f.sid;
}

ojson factorHead(const Factor& f) {
  ojson j;
  j["sid"] = f.sid;
  j["account_sid"] = f.account_sid;
  j["service_sid"] = f.service_sid;
  j["entity_sid"] = f.entity_sid;
  j["identity"] = f.identity;
  return j;
}
}  // namespace

ojson encodeEntity(const Entity& e, const std::string& base) {
  const std::string url = entityUrl(base, e.service_sid, e.identity);
  ojson j;
  j["sid"] = e.sid;
  j["identity"] = e.identity;
  j["account_sid"] = e.account_sid;
  j["service_sid"] = e.service_sid;
  j["date_created"] = formatIso8601(e.date_created);
  j["date_updated"] = formatIso8601(e.date_updated);
  j["url"] = url;
  j["links"] = ojson{{"factors", url + "/Factors"},
                     {"new_factors", url + "/Factors"},
                     {"challenges", url + "/Challenges"}};
  return j;
}

ojson encodeFactor(const Factor& f, const std::string& base) {
  ojson j = factorHead(f);
  factorTail(j, f, base);
  return j;
}

ojson encodeNewFactor(const NewFactor& n, const std::string& base) {
  const Factor& f = n.factor;
  ojson j = factorHead(f);
  if (f.factor_type == "totp")
    j["binding"] = ojson{{"secret", n.secret}, {"uri", n.uri}};
  else if (f.factor_type == "push")
    j["binding"] = ojson{{"alg", f.binding_alg}, {"public_key", f.public_key}};
  else
    j["binding"] = nullptr;
  j["options"] = nullptr;
  factorTail(j, f, base);
  return j;
}

ojson encodeChallenge(const Challenge& c, bool include_date, const std::string& base) {
  const std::string url = entityUrl(base, c.service_sid, c.identity) + "/Challenges/" + c.sid;
  // The fields a device signs come from the core, so that what it signs is what the core checks.
  ojson signed_values = challengeSignedValues(c, include_date);
  ojson j;
  for (const char* k : {"sid", "account_sid", "service_sid", "entity_sid", "identity", "factor_sid",
                        "date_created"})
    j[k] = signed_values[k];
  j["date_updated"] = formatIso8601(c.date_updated);
  j["date_responded"] = c.date_responded ? ojson(formatIso8601(c.date_responded)) : ojson(nullptr);
  j["expiration_date"] = signed_values["expiration_date"];
  j["status"] = c.status;
  j["responded_reason"] = c.responded_reason;
  j["details"] = signed_values["details"];
  j["hidden_details"] = signed_values["hidden_details"];
  j["metadata"] = jsonObjectOrNull(c.metadata);
  j["factor_type"] = signed_values["factor_type"];
  j["url"] = url;
  j["links"] = ojson{{"notifications", url + "/Notifications"}};
  return j;
}

ojson encodeNotification(const Notification& n) {
  ojson j;
  j["sid"] = n.sid;
  j["account_sid"] = n.account_sid;
  j["service_sid"] = n.service_sid;
  j["entity_sid"] = n.entity_sid;
  j["identity"] = n.identity;
  j["challenge_sid"] = n.challenge_sid;
  j["priority"] = n.priority;
  j["ttl"] = n.ttl;
  j["date_created"] = formatIso8601(n.date_created);
  return j;
}

ojson encodeAccessToken(const AccessToken& t, const std::string& base) {
  ojson j;
  j["sid"] = t.sid;
  j["account_sid"] = t.account_sid;
  j["service_sid"] = t.service_sid;
  j["entity_identity"] = t.entity_identity;
  j["factor_type"] = t.factor_type;
  j["factor_friendly_name"] = orNull(t.factor_friendly_name);
  j["token"] = t.token;
  j["url"] = base + "/v2/Services/" + t.service_sid + "/AccessTokens/" + t.sid;
  j["ttl"] = t.ttl;
  j["date_created"] = formatIso8601(t.date_created);
  return j;
}

ojson encodeWebhook(const Webhook& w, const std::string& base) {
  ojson j;
  j["sid"] = w.sid;
  j["service_sid"] = w.service_sid;
  j["account_sid"] = w.account_sid;
  j["friendly_name"] = w.friendly_name;
  j["event_types"] = w.event_types;
  j["status"] = w.status;
  j["version"] = w.version;
  j["webhook_url"] = w.webhook_url;
  j["webhook_method"] = w.webhook_method;
  j["date_created"] = formatIso8601(w.date_created);
  j["date_updated"] = formatIso8601(w.date_updated);
  j["url"] = base + "/v2/Services/" + w.service_sid + "/Webhooks/" + w.sid;
  return j;
}

}  // namespace verifyd::twilio
