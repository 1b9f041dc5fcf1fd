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

}  // namespace verifyd::twilio
