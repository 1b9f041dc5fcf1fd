#pragma once
// What a delivery provider is asked to send, what it answers, and the interface every provider
// (Kannel, SMTP, Twilio-compatible HTTP APIs, JSON webhooks, the dev outbox) implements.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "verifyd/common/result.h"

namespace verifyd {

// One message for one delivery attempt. Rendered by the dispatcher from the locale's template;
// providers only transport it.
struct OutgoingMessage {
  std::string attempt_sid;  // VL…: unique per attempt, usable as an idempotency key
  std::string account_sid;
  std::string service_sid;
  std::string verification_sid;
  std::string channel;  // sms | call | email | whatsapp
  std::string to;       // E.164 number, or e-mail address
  std::string locale;   // e.g. "en", "pt-BR"
  std::string code;     // the code itself (for templates that place it themselves)
  std::string friendly_name;
  // sms / whatsapp: the text. call: the sentence to speak once (see `speech`). email: plain text.
  std::string text;
  // call: the full text to speak (digits one by one, repeated), and the TTS language (e.g.
  // "fr-FR").
  std::string speech;
  std::string speech_language;
  // email only
  std::string subject;
  std::string html;
  std::string from;       // ChannelConfiguration.from, or empty for the provider's default
  std::string from_name;  // ChannelConfiguration.from_name
  // Twilio Messaging Service chosen by the service's Messaging Configuration for the country.
  std::string messaging_service_sid;
  // Absolute URL the provider reports delivery status to (already authenticated by a token in
  // its query). Providers add their own query parameters with '&'.
  std::string status_callback;
  // push only (channel "push", `to` = the device's FCM registration or APNs token): the
  // platform ("fcm" or "apn"), the notification JSON in `data`, and when it stops being worth
  // delivering (Unix seconds, 0: no limit; `now_or_never`: one immediate try only).
  std::string platform;
  std::string data;
  long long expires_at = 0;
  bool now_or_never = false;
};

// What a delivery receipt says: queued, sent, delivered, undelivered or failed, and the error.
struct DeliveryReceipt {
  std::string status;
  std::string error_code;
  std::string error_message;
};

// How an attempt ended at the provider.
enum class SendOutcome {
  kAccepted,   // the provider took the message (status says how far it got)
  kTransient,  // not taken, may succeed later: connection refused, 5xx, 429, ...
  kPermanent,  // refused for good by this provider: 4xx, bad address, auth failure
  kUnknown,    // the request may have reached the provider but no answer came (timeout)
};

struct SendResult {
  SendOutcome outcome = SendOutcome::kTransient;
  // With kAccepted: "queued", "sent" or "delivered" (SMTP acceptance by the final server).
  std::string status = "sent";
  std::string provider_message_id;  // empty when the provider returns none (Kannel)
  int error_code = 0;               // provider's or HTTP status, 0 when none
  std::string error_message;        // never contains the code or secrets
};

class Sender {
 public:
  virtual ~Sender() = default;
  // Blocking; must return within the provider's configured timeout. Thread-safe: several
  // dispatcher workers call it at once.
  virtual SendResult send(const OutgoingMessage& message) = 0;
  // A delivery receipt the provider sent to the attempt's status_callback (query and form or
  // flat JSON fields), in verifyd's terms. The default reads the webhook form verifyd documents:
  // status, error_code, error_message. kInvalidArgument for what the provider would not send.
  virtual Result<DeliveryReceipt> readReceipt(
      const std::map<std::string, std::string>& fields) const;
  // Whether it reaches devices of a push `platform` (fcm, apn); message providers: no.
  virtual bool serves(const std::string& platform) const {
    (void)platform;
    return false;
  }
};

// A provider as the config file declares it: `[[provider]]` tables in verifyd.toml.
struct ProviderConfig {
  std::string name;                             // unique, shows in attempts
  std::string type;                             // kannel | smtp | twilio | webhook | dev-outbox
  std::vector<std::string> channels;            // which channels it serves
  std::vector<std::string> countries;           // ISO alpha-2; empty = every country
  std::map<std::string, std::string> settings;  // every other key, as text
  int timeout_ms = 10000;                       // whole request
};

}  // namespace verifyd
