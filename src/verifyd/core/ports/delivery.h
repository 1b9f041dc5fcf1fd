#pragma once
// What the verification use cases need from delivery: the message for a start, composed in
// its locale from the templates, whether a provider will send it, and a nudge once an attempt
// is stored. Implemented by delivery/ (DeliveryService); a null Delivery keeps every message in
// the dev outbox only.
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "verifyd/common/result.h"

namespace verifyd {

struct ComposeRequest {
  std::string channel;
  std::string to;
  std::string locale;  // `Locale` as given, or empty for the destination's
  std::string friendly_name;
  std::string code;
  bool do_not_share = false;
  std::optional<std::string> amount, payee;  // PSD2
  std::string app_hash;
  std::string template_sid;  // TemplateSid, or the service's default template
  std::map<std::string, std::string> template_substitutions;
  // email: ChannelConfiguration
  std::string email_from, email_from_name;
  std::map<std::string, std::string> email_substitutions;
  int ttl_minutes = 10;
};

struct ComposedMessage {
  std::string locale;   // the locale used
  std::string country;  // ISO alpha-2 of the destination's calling code ("" for email)
  std::string preview;  // the text as the dev outbox shows it
  std::string payload;  // everything a provider needs, serialized; holds the code: seal it
};

// A delivery receipt as a provider reports it (Kannel DLR, status callback).
struct Receipt {
  std::string provider;
  std::string attempt_sid;
  std::string token;                          // authenticates the callback
  std::map<std::string, std::string> fields;  // query and form (or flat JSON) fields
};

class Delivery {
 public:
  virtual ~Delivery() = default;
  // kNotFound for an unsupported `locale` (Twilio answers 404), kInvalidArgument for an unknown
  // template or a missing template substitution.
  virtual Result<ComposedMessage> compose(const ComposeRequest& request) const = 0;
  // True when a provider serves the channel (and the attempt is queued for it).
  virtual bool dispatches(std::string_view channel) const = 0;
  // An attempt was committed: send it soon. Cheap and non-blocking.
  virtual void queued() = 0;
  // Applies a delivery receipt: kNotFound for an unknown attempt or a bad token.
  virtual Status receipt(const Receipt& receipt) = 0;
  // Webhook events or push notifications were committed (FactorStore deliveries): send soon.
  virtual void eventsQueued() {}
};

}  // namespace verifyd
