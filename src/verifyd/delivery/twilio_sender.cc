// type = "twilio": a Twilio-compatible REST API. sms and whatsapp go to Messages.json, call to
// Calls.json with inline TwiML <Say>. Delivery status comes back on StatusCallback.
#include <algorithm>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "verifyd/delivery/http_client.h"
#include "verifyd/delivery/providers.h"
#include "verifyd/delivery/templates.h"

namespace verifyd {
namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;

std::string setting(const ProviderConfig& config, const std::string& key,
                    std::string fallback = {}) {
  auto it = config.settings.find(key);
  return it == config.settings.end() ? std::move(fallback) : it->second;
}

bool startsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

void replaceAll(std::string& text, const std::string& needle, std::string_view with) {
  if (needle.empty()) return;
  for (size_t at = text.find(needle); at != std::string::npos;
       at = text.find(needle, at + with.size()))
    text.replace(at, needle.size(), with);
}

// Provider text shown in attempts: short, and never carrying the code or the credentials.
std::string safeText(std::string text, const std::string& code, const std::string& secret) {
  for (char& c : text)
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  replaceAll(text, secret, "***");
  replaceAll(text, code, "***");
  if (text.size() > 200) text = text.substr(0, 200) + "...";
  return text;
}

// Twilio's message and call statuses -> how far the provider got at acceptance.
std::string acceptedStatus(const std::string& status) {
  static const std::map<std::string, std::string> kMap = {
      {"accepted", "queued"}, {"scheduled", "queued"},   {"queued", "queued"},
      {"initiated", "sent"},  {"ringing", "sent"},       {"in-progress", "sent"},
      {"sending", "sent"},    {"sent", "sent"},          {"delivered", "delivered"},
      {"read", "delivered"},  {"completed", "delivered"}};
  auto it = kMap.find(status);
  return it == kMap.end() ? "queued" : it->second;
}

class TwilioSender final : public Sender {
 public:
  TwilioSender(std::string base_url, std::string account_sid, std::string auth_token,
               std::string from, std::string whatsapp_from, std::string messaging_service_sid,
               int timeout_ms)
      : account_sid_(std::move(account_sid)),
        auth_token_(std::move(auth_token)),
        from_(std::move(from)),
        whatsapp_from_(std::move(whatsapp_from)),
        messaging_service_sid_(std::move(messaging_service_sid)),
        timeout_ms_(timeout_ms) {
    const std::string account_url =
        base_url + "/2010-04-01/Accounts/" + urlEncode(account_sid_) + "/";
    messages_url_ = account_url + "Messages.json";
    calls_url_ = account_url + "Calls.json";
  }

  // Twilio's status callbacks: MessageStatus for messages, CallStatus for calls, ErrorCode.
  Result<DeliveryReceipt> readReceipt(
      const std::map<std::string, std::string>& fields) const override {
    auto field = [&fields](const char* k) {
      auto it = fields.find(k);
      return it == fields.end() ? std::string() : it->second;
    };
    std::string s = field("MessageStatus");
    if (s.empty()) {
      const std::string call = field("CallStatus");
      if (call == "completed")
        s = "delivered";
      else if (call == "busy" || call == "no-answer" || call == "failed" || call == "canceled")
        s = "undelivered";
      else if (!call.empty())
        s = "sent";
    }
    if (s == "accepted" || s == "scheduled") s = "queued";
    if (s == "sending") s = "sent";
    return DeliveryReceipt{s, field("ErrorCode"), field("ErrorMessage")};
  }

  SendResult send(const OutgoingMessage& message) override {
    Fields fields;
    std::string url;
    if (message.channel == "sms") {
      url = messages_url_;
      fields.emplace_back("To", message.to);
      if (!message.messaging_service_sid.empty())
        fields.emplace_back("MessagingServiceSid", message.messaging_service_sid);
      else if (!messaging_service_sid_.empty())
        fields.emplace_back("MessagingServiceSid", messaging_service_sid_);
      else
        fields.emplace_back("From", from_);
      fields.emplace_back("Body", message.text);
    } else if (message.channel == "whatsapp") {
      url = messages_url_;
      fields.emplace_back(
          "To", startsWith(message.to, "whatsapp:") ? message.to : "whatsapp:" + message.to);
      fields.emplace_back("From", whatsapp_from_);
      fields.emplace_back("Body", message.text);
    } else if (message.channel == "call") {
      url = calls_url_;
      fields.emplace_back("To", message.to);
      fields.emplace_back("From", from_);
      const std::string& speech = message.speech.empty() ? message.text : message.speech;
      std::string twiml = "<Response><Say";
      if (!message.speech_language.empty())
        twiml += " language=\"" + escapeHtml(message.speech_language) + "\"";
      twiml += ">" + escapeHtml(speech) + "</Say></Response>";
      fields.emplace_back("Twiml", std::move(twiml));
    } else {
      SendResult result;
      result.outcome = SendOutcome::kPermanent;
      result.error_message = "the twilio provider does not send channel " + message.channel;
      return result;
    }
    if (!message.status_callback.empty())
      fields.emplace_back("StatusCallback", message.status_callback);

    HttpRequest request;
    request.method = "POST";
    request.url = url;
    request.headers = {{"Content-Type", "application/x-www-form-urlencoded"},
                       {"Accept", "application/json"},
                       {"Expect", ""}};
    request.body = formEncode(fields);
    request.basic_user = account_sid_;
    request.basic_password = auth_token_;
    request.timeout_ms = timeout_ms_;
    request.connect_timeout_ms = std::min(timeout_ms_, 3000);
    return interpret(httpCall(request), message);
  }

 private:
  SendResult interpret(const HttpResponse& response, const OutgoingMessage& message) const {
    SendResult result;
    if (response.status == 0) {
      result.outcome = response.not_sent ? SendOutcome::kTransient : SendOutcome::kUnknown;
      result.error_message =
          safeText("twilio request failed: " + response.error, message.code, auth_token_);
      return result;
    }
    const nlohmann::json body = nlohmann::json::parse(response.body, nullptr, false);
    const bool object = body.is_object();
    if (response.status >= 200 && response.status < 300) {
      result.outcome = SendOutcome::kAccepted;
      result.status = "queued";
      if (object) {
        if (auto it = body.find("sid"); it != body.end() && it->is_string())
          result.provider_message_id = it->get<std::string>();
        if (auto it = body.find("status"); it != body.end() && it->is_string())
          result.status = acceptedStatus(it->get<std::string>());
      }
      return result;
    }
    const int status = response.status;
    result.outcome = (status == 408 || status == 429 || status >= 500) ? SendOutcome::kTransient
                                                                       : SendOutcome::kPermanent;
    result.error_code = status;
    result.error_message = "twilio answered HTTP " + std::to_string(status);
    if (object) {
      if (auto it = body.find("code"); it != body.end()) {
        if (it->is_number_integer()) {
          result.error_code = it->get<int>();
        } else if (it->is_string()) {
          const std::string code = it->get<std::string>();
          if (!code.empty() && code.size() < 10 &&
              std::all_of(code.begin(), code.end(), [](char c) { return c >= '0' && c <= '9'; }))
            result.error_code = std::stoi(code);
        }
      }
      if (auto it = body.find("message");
          it != body.end() && it->is_string() && !it->get<std::string>().empty())
        result.error_message = it->get<std::string>();
    }
    result.error_message = safeText(result.error_message, message.code, auth_token_);
    return result;
  }

  std::string account_sid_, auth_token_, from_, whatsapp_from_, messaging_service_sid_;
  std::string messages_url_, calls_url_;
  int timeout_ms_;
};

}  // namespace

Result<std::unique_ptr<Sender>> makeTwilioSender(const ProviderConfig& config) {
  std::string base_url = setting(config, "base_url", "https://api.twilio.com");
  while (!base_url.empty() && base_url.back() == '/') base_url.pop_back();
  if (!startsWith(base_url, "http://") && !startsWith(base_url, "https://"))
    return fail(Error::invalid("base_url", "must be an http:// or https:// URL"));
  const std::string account_sid = setting(config, "account_sid");
  if (account_sid.empty()) return fail(Error::invalid("account_sid", "required"));
  const std::string auth_token = setting(config, "auth_token");
  if (auth_token.empty()) return fail(Error::invalid("auth_token", "required"));
  const std::string from = setting(config, "from");
  const std::string messaging_service_sid = setting(config, "messaging_service_sid");
  std::string whatsapp_from = setting(config, "whatsapp_from");
  if (whatsapp_from.empty() && !from.empty()) whatsapp_from = from;
  if (!whatsapp_from.empty() && !startsWith(whatsapp_from, "whatsapp:"))
    whatsapp_from = "whatsapp:" + whatsapp_from;
  if (config.timeout_ms <= 0) return fail(Error::invalid("timeout_ms", "must be positive"));

  if (config.channels.empty()) return fail(Error::invalid("channels", "required"));
  for (const std::string& channel : config.channels) {
    if (channel == "sms") {
      if (from.empty() && messaging_service_sid.empty())
        return fail(Error::invalid("from", "required for sms (or messaging_service_sid)"));
    } else if (channel == "whatsapp") {
      if (whatsapp_from.empty())
        return fail(Error::invalid("whatsapp_from", "required for whatsapp (or from)"));
    } else if (channel == "call") {
      if (from.empty()) return fail(Error::invalid("from", "required for call"));
    } else {
      return fail(Error::invalid(
          "channels", "the twilio provider sends sms, whatsapp and call, not " + channel));
    }
  }
  return std::make_unique<TwilioSender>(std::move(base_url), account_sid, auth_token, from,
                                        std::move(whatsapp_from), messaging_service_sid,
                                        config.timeout_ms);
}

}  // namespace verifyd
