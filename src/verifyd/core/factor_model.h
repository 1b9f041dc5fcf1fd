#pragma once
// Verify's factors (TOTP and push): Entities (YE), Factors (YF), Challenges (YC), Access Tokens
// (YK), Webhooks (YW) and the webhook events the durable outbox delivers. Field names follow
// the JSON the API emits.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "verifyd/common/clock.h"

namespace verifyd {

// A user of the customer's app, named by an opaque identity (8-64 chars, no PII).
struct Entity {
  std::string sid;  // YE…
  std::string account_sid;
  std::string service_sid;
  std::string identity;
  UnixTime date_created = 0;
  UnixTime date_updated = 0;
};

struct TotpConfig {
  std::string alg = "sha1";  // sha1 | sha256 | sha512
  int skew = 1;              // 0-2 steps either side
  int code_length = 6;       // 3-8 digits
  int time_step = 30;        // 20-60 s
};

struct PushConfig {
  std::string sdk_version;
  std::string app_id;
  std::string notification_platform;  // apn | fcm | none
  std::string notification_token;
};

struct Factor {
  std::string sid;  // YF…
  std::string account_sid;
  std::string service_sid;
  std::string entity_sid;
  std::string identity;
  std::string friendly_name;
  std::string status = "unverified";    // unverified | verified
  std::string factor_type;              // totp | push
  TotpConfig totp;                      // factor_type totp
  PushConfig push;                      // factor_type push
  std::optional<std::string> metadata;  // JSON object text, or none
  // totp: the seed (raw bytes) sealed under the factor key (FactorCrypto::seal): never in clear.
  std::string secret_sealed;
  // push: the device's P-256 public key, base64 of its DER SubjectPublicKeyInfo, and "ES256".
  std::string public_key;
  std::string binding_alg;
  int failed_attempts = 0;      // wrong codes while unverified (5 -> 60310)
  std::int64_t last_step = -1;  // totp: the newest time step accepted, never accepted again
  UnixTime date_created = 0;
  UnixTime date_updated = 0;
};

struct ChallengeField {
  std::string label;
  std::string value;
};

struct Challenge {
  std::string sid;  // YC…
  std::string account_sid;
  std::string service_sid;
  std::string entity_sid;
  std::string identity;
  std::string factor_sid;
  std::string factor_type;
  std::string status = "pending";         // pending | expired | approved | denied
  std::string responded_reason = "none";  // none | not_needed | not_requested
  std::string details_message;
  std::vector<ChallengeField> details_fields;
  std::optional<std::string> hidden_details;  // JSON object text
  std::optional<std::string> metadata;        // JSON object text
  UnixTime expiration_date = 0;
  UnixTime date_responded = 0;  // 0 = null
  int failed_attempts = 0;      // wrong TOTP codes (5 -> 60308)
  UnixTime date_created = 0;
  UnixTime date_updated = 0;
};

struct AccessToken {
  std::string sid;  // YK…
  std::string account_sid;
  std::string service_sid;
  std::string entity_identity;
  std::string factor_type = "push";
  std::optional<std::string> factor_friendly_name;
  std::string token;  // the signed JWT handed to the device
  int ttl = 60;
  UnixTime date_created = 0;
};

struct Webhook {
  std::string sid;  // YW…
  std::string account_sid;
  std::string service_sid;
  std::string friendly_name;
  std::vector<std::string> event_types;  // "*" or factor.created, factor.verified, ...
  std::string status = "enabled";        // enabled | disabled
  std::string version = "v2";            // v2 | v1
  std::string webhook_url;
  std::string webhook_method = "POST";
  UnixTime date_created = 0;
  UnixTime date_updated = 0;
};

// An event for the service's webhooks; the store fans it out to every enabled webhook whose
// event_types include `type` or "*", in the same transaction as the change that raised it.
struct WebhookEvent {
  std::string type;     // factor.created | factor.verified | factor.deleted | challenge.approved |
                        // challenge.denied
  std::string payload;  // JSON object text (the body, without per-webhook fields)
};

// One outbound event, sent by the dispatcher with retries: a webhook call (kind "webhook": POST
// `body` to `url`, signed with the account's auth token) or a push notification (kind "push":
// `body` is the notification for the push providers; `url` empty).
struct WebhookDelivery {
  std::string sid;               // internal id (WD…)
  std::string kind = "webhook";  // webhook | push
  std::string account_sid;
  std::string service_sid;
  std::string webhook_sid;  // kind webhook
  std::string url;
  std::string body;               // JSON
  std::string status = "queued";  // queued | sending | delivered | failed
  int tries = 0;
  std::string error;
  std::int64_t next_try_ms = 0;
  std::string lease_token;
  UnixTime date_created = 0;
  UnixTime date_updated = 0;
};

}  // namespace verifyd
