#pragma once
// Provider constructors, one per `type` of a [[provider]] table. Each validates its settings
// (kInvalidArgument (Error::invalid) naming the bad setting) and returns a thread-safe Sender.
#include <memory>

#include "verifyd/common/result.h"
#include "verifyd/delivery/sender.h"

namespace verifyd {

// type = "kannel": SMS through Kannel's sendsms HTTP interface, DLRs back to status_callback.
Result<std::unique_ptr<Sender>> makeKannelSender(const ProviderConfig& config);
// type = "smtp": e-mail over SMTP (libcurl) with STARTTLS and AUTH, multipart text + HTML.
Result<std::unique_ptr<Sender>> makeSmtpSender(const ProviderConfig& config);
// type = "twilio": a Twilio-compatible API: Messages.json for sms/whatsapp, Calls.json with
// TwiML <Say> for call.
Result<std::unique_ptr<Sender>> makeTwilioSender(const ProviderConfig& config);
// type = "webhook": a JSON POST built from a body template, for any other gateway.
Result<std::unique_ptr<Sender>> makeWebhookSender(const ProviderConfig& config);

}  // namespace verifyd

namespace verifyd {

// A push notification for one device: what a kind "push" WebhookDelivery carries. `body` is
// the challenge's notification JSON as the factor use cases wrote it (platform, token,
// challenge_sid, factor_sid, message, ...).
struct PushNotification {
  std::string delivery_sid;  // WD…: unique per notification, usable as an idempotency key
  std::string account_sid;
  std::string service_sid;
  std::string platform;  // fcm | apn
  std::string token;     // FCM registration token or APNs device token
  std::string body;      // the notification JSON
  // When the notification stops being worth delivering (Unix seconds; 0: no limit), from its
  // `ttl` (0: deliver now or never).
  long long expires_at = 0;
  bool now_or_never = false;
};

// A provider that delivers push notifications (channel "push"), behind the same Sender
// interface as the message providers: `send` takes the OutgoingMessage the event dispatcher
// builds (to = device token, platform, data = the notification JSON) and hands it to `push`.
class PushSender : public Sender {
 public:
  bool serves(const std::string& platform) const override = 0;
  SendResult send(const OutgoingMessage& message) final;

 protected:
  // Blocking, bounded by the provider's timeout; thread-safe.
  virtual SendResult push(const PushNotification& notification) = 0;
};

// type = "fcm": Firebase Cloud Messaging HTTP v1, OAuth 2 access tokens from a service account
// (RS256 JWT bearer grant), cached until they expire.
Result<std::unique_ptr<PushSender>> makeFcmSender(const ProviderConfig& config);
// type = "apns": Apple Push Notification service over HTTP/2 with an ES256 provider token
// (.p8 key), refreshed every 50 minutes.
Result<std::unique_ptr<PushSender>> makeApnsSender(const ProviderConfig& config);
// type = "webhook" in channel "push": POSTs the notification JSON as it is to `url` (same
// `headers.*`, `basic_user`/`basic_password` and `content_type` settings), for any platform.
Result<std::unique_ptr<PushSender>> makePushWebhookSender(const ProviderConfig& config);

}  // namespace verifyd
