#include "verifyd/storage/record_json.h"

#include <nlohmann/json.hpp>
#include <optional>

namespace verifyd::storage {

using json = nlohmann::json;

namespace {
template <class T>
void put(json& j, const char* k, const std::optional<T>& v) {
  if (v) j[k] = *v;
}
template <class T>
void get(const json& j, const char* k, std::optional<T>& v) {
  if (auto it = j.find(k); it != j.end() && !it->is_null()) v = it->get<T>();
}
template <class T>
void get(const json& j, const char* k, T& v) {
  if (auto it = j.find(k); it != j.end() && !it->is_null()) v = it->get<T>();
}

}  // namespace

std::string encodeSettings(const ServiceSettings& s) {
  json j;
  j["friendly_name"] = s.friendly_name;
  j["code_length"] = s.code_length;
  j["lookup_enabled"] = s.lookup_enabled;
  j["psd2_enabled"] = s.psd2_enabled;
  j["skip_sms_to_landlines"] = s.skip_sms_to_landlines;
  j["dtmf_input_required"] = s.dtmf_input_required;
  put(j, "tts_name", s.tts_name);
  j["do_not_share_warning_enabled"] = s.do_not_share_warning_enabled;
  j["custom_code_enabled"] = s.custom_code_enabled;
  j["push_include_date"] = s.push_include_date;
  put(j, "push_apn_credential_sid", s.push_apn_credential_sid);
  put(j, "push_fcm_credential_sid", s.push_fcm_credential_sid);
  put(j, "totp_issuer", s.totp_issuer);
  j["totp_time_step"] = s.totp_time_step;
  j["totp_code_length"] = s.totp_code_length;
  j["totp_skew"] = s.totp_skew;
  put(j, "default_template_sid", s.default_template_sid);
  put(j, "whatsapp_msg_service_sid", s.whatsapp_msg_service_sid);
  put(j, "whatsapp_from", s.whatsapp_from);
  put(j, "passkeys_rp_id", s.passkeys_rp_id);
  put(j, "passkeys_rp_name", s.passkeys_rp_name);
  put(j, "passkeys_rp_origins", s.passkeys_rp_origins);
  put(j, "passkeys_authenticator_attachment", s.passkeys_authenticator_attachment);
  put(j, "passkeys_discoverable_credentials", s.passkeys_discoverable_credentials);
  put(j, "passkeys_user_verification", s.passkeys_user_verification);
  j["verify_event_subscription_enabled"] = s.verify_event_subscription_enabled;
  return j.dump();
}

ServiceSettings decodeSettings(const std::string& text) {
  json j = json::parse(text);
  ServiceSettings s;
  get(j, "friendly_name", s.friendly_name);
  get(j, "code_length", s.code_length);
  get(j, "lookup_enabled", s.lookup_enabled);
  get(j, "psd2_enabled", s.psd2_enabled);
  get(j, "skip_sms_to_landlines", s.skip_sms_to_landlines);
  get(j, "dtmf_input_required", s.dtmf_input_required);
  get(j, "tts_name", s.tts_name);
  get(j, "do_not_share_warning_enabled", s.do_not_share_warning_enabled);
  get(j, "custom_code_enabled", s.custom_code_enabled);
  get(j, "push_include_date", s.push_include_date);
  get(j, "push_apn_credential_sid", s.push_apn_credential_sid);
  get(j, "push_fcm_credential_sid", s.push_fcm_credential_sid);
  get(j, "totp_issuer", s.totp_issuer);
  get(j, "totp_time_step", s.totp_time_step);
  get(j, "totp_code_length", s.totp_code_length);
  get(j, "totp_skew", s.totp_skew);
  get(j, "default_template_sid", s.default_template_sid);
  get(j, "whatsapp_msg_service_sid", s.whatsapp_msg_service_sid);
  get(j, "whatsapp_from", s.whatsapp_from);
  get(j, "passkeys_rp_id", s.passkeys_rp_id);
  get(j, "passkeys_rp_name", s.passkeys_rp_name);
  get(j, "passkeys_rp_origins", s.passkeys_rp_origins);
  get(j, "passkeys_authenticator_attachment", s.passkeys_authenticator_attachment);
  get(j, "passkeys_discoverable_credentials", s.passkeys_discoverable_credentials);
  get(j, "passkeys_user_verification", s.passkeys_user_verification);
  get(j, "verify_event_subscription_enabled", s.verify_event_subscription_enabled);
  return s;
}

std::string encodeAttempts(const std::vector<SendAttempt>& attempts) {
  json a = json::array();
  for (const auto& x : attempts) a.push_back(json::array({x.attempt_sid, x.channel, x.time}));
  return a.dump();
}

std::vector<SendAttempt> decodeAttempts(const std::string& text) {
  std::vector<SendAttempt> out;
  for (const auto& x : json::parse(text))
    out.push_back(
        SendAttempt{x[0].get<std::string>(), x[1].get<std::string>(), x[2].get<UnixTime>()});
  return out;
}

}  // namespace verifyd::storage
