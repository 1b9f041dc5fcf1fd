#pragma once
// The domain's records. Field names follow the JSON the API emits (snake_case).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "verifyd/common/clock.h"
#include "verifyd/common/error.h"

namespace verifyd {

struct Account {
  std::string sid;  // AC…
  std::string friendly_name;
  std::string auth_token_mac;     // Keyring::mac("auth", token)
  std::string auth_token_sealed;  // Keyring::seal(token): read back to print it, sign callbacks
  UnixTime date_created = 0;
};

struct ApiKey {
  std::string sid;  // SK…
  std::string account_sid;
  std::string friendly_name;
  std::string secret_mac;  // Keyring::mac("auth", secret); the secret itself is never stored
  UnixTime date_created = 0;
};

// What authenticates a request: an account's token or one of its API keys.
struct Credential {
  std::string account_sid;
  std::string secret_mac;
};

// Every setting of a Verify service; the API returns all of them even where their behaviour
// comes with later work (push, TOTP, WhatsApp, passkeys).
struct ServiceSettings {
  std::string friendly_name;
  int code_length = 6;
  bool lookup_enabled = false;
  bool psd2_enabled = false;
  bool skip_sms_to_landlines = false;
  bool dtmf_input_required = false;
  std::optional<std::string> tts_name;
  bool do_not_share_warning_enabled = false;
  bool custom_code_enabled = false;
  bool push_include_date = false;
  std::optional<std::string> push_apn_credential_sid;
  std::optional<std::string> push_fcm_credential_sid;
  std::optional<std::string> totp_issuer;
  int totp_time_step = 30;
  int totp_code_length = 6;
  int totp_skew = 1;
  std::optional<std::string> default_template_sid;
  std::optional<std::string> whatsapp_msg_service_sid;
  std::optional<std::string> whatsapp_from;
  std::optional<std::string> passkeys_rp_id;
  std::optional<std::string> passkeys_rp_name;
  std::optional<std::vector<std::string>> passkeys_rp_origins;
  std::optional<std::string> passkeys_authenticator_attachment;
  std::optional<std::string> passkeys_discoverable_credentials;
  std::optional<std::string> passkeys_user_verification;
  bool verify_event_subscription_enabled = false;
};

struct Service {
  std::string sid;  // VA…
  std::string account_sid;
  ServiceSettings settings;
  UnixTime date_created = 0;
  UnixTime date_updated = 0;
};

struct SendAttempt {
  std::string attempt_sid;  // VL…
  std::string channel;
  UnixTime time = 0;
};

namespace status {
inline constexpr const char* kPending = "pending";
inline constexpr const char* kApproved = "approved";
inline constexpr const char* kCanceled = "canceled";
inline constexpr const char* kMaxAttempts = "max_attempts_reached";
inline constexpr const char* kExpired = "expired";
}  // namespace status

struct Verification {
  std::string sid;  // VE…
  std::string service_sid;
  std::string account_sid;
  std::string to;
  std::string channel;
  std::string status = status::kPending;
  // Keyring::mac("code", sid + code). The code itself is never stored: generated codes are
  // derived again from `code_seed` (see core/code.h) when a resend needs them.
  std::string code_hash;
  std::string code_seed;  // empty for custom codes
  int code_length = 6;
  int check_attempts = 0;
  std::optional<std::string> amount;
  std::optional<std::string> payee;
  std::vector<SendAttempt> send_attempts;
  UnixTime date_created = 0;
  UnixTime date_updated = 0;
  UnixTime expires_at = 0;
  // Not stored: with the service's lookup_enabled, the line type offline metadata gives `to`
  // (Twilio's `lookup.carrier.type`), filled in when the verification is answered.
  std::optional<std::string> lookup_type;
  // The destination prefix Fraud Guard counted this send under (sms only), so that approving the
  // verification counts as a conversion of that prefix.
  std::optional<std::string> fraud_prefix;
};

// A programmable rate limit (Twilio's Service Rate Limits): a key name the app passes values
// for in `RateLimits` on each start, and the buckets that limit each value.
struct RateLimit {
  std::string sid;  // RK…
  std::string service_sid;
  std::string account_sid;
  std::string unique_name;
  std::optional<std::string> description;
  UnixTime date_created = 0;
  UnixTime date_updated = 0;
};

// At most `max` starts per `interval` seconds for one value of its rate limit's key.
struct Bucket {
  std::string sid;  // BL…
  std::string rate_limit_sid;
  std::string service_sid;
  std::string account_sid;
  int max = 0;
  int interval = 0;
  UnixTime date_created = 0;
  UnixTime date_updated = 0;
};

// One bucket charged by a start: the store counts it atomically with the start's write.
struct RateCharge {
  std::string bucket_sid;
  std::string rate_limit_name;  // for the error
  std::string key;              // the value the app passed
  int max = 0;
  int interval = 0;
};

// A number exempt from geo permissions (Twilio's Safe List), per account.
struct SafeNumber {
  std::string sid;  // GN…
  std::string account_sid;
  std::string phone_number;
  UnixTime date_created = 0;
};

// An account's permission for sending `channel` (sms or call) to `country` (ISO alpha-2).
struct GeoPermission {
  std::string channel;
  std::string country;
  bool allowed = true;
  UnixTime date_updated = 0;
};

// Fraud Guard's verdict for one sms start, checked and counted in the start's transaction.
struct FraudCheck {
  std::string account_sid;
  std::string prefix;        // country code and leading digits, e.g. +2250700000
  int min_unconverted = 15;  // unconverted sends to the prefix before it can be judged
  double factor = 0.35;      // anomalous below factor x the account's own conversion rate
  int window_hours = 2;      // the prefix's sends and conversions: this hour and the previous
  int baseline_hours = 24;   // the account's conversion rate
  int block_seconds = 12 * 3600;
};

// A blocked destination prefix.
struct FraudBlock {
  std::string prefix;
  UnixTime blocked_until = 0;
  UnixTime date_created = 0;
  std::int64_t sends = 0, conversions = 0;  // what the prefix had when it was blocked
};

// What a start must pass besides its own rules: rate limit buckets and Fraud Guard.
struct StartGuards {
  std::vector<RateCharge> charges;
  std::optional<FraudCheck> fraud;
  // Sends to the same service and `To` across verifications within the window (0 = no limit):
  // counted from the verifications themselves, so the limit costs no extra writes.
  int max_destination_sends = 0;
  int destination_window = 600;
  // Pending verifications to one number across the account's services (0 = no limit): a new
  // verification beyond it answers kTooManyPending. Resends are not new verifications.
  int max_pending_per_number = 0;
  std::string account_sid;
};

// A message verifyd would deliver, kept in the dev outbox with its rendered text.
struct OutboxMessage {
  std::string sid;  // MM…
  std::string account_sid;
  std::string service_sid;
  std::string verification_sid;
  std::string to;
  std::string channel;
  std::string body;
  UnixTime date_created = 0;
  std::string code;  // the code in the body, for tools that read the outbox
};

namespace message_status {
inline constexpr const char* kQueued = "queued";
inline constexpr const char* kSending = "sending";
inline constexpr const char* kSent = "sent";
inline constexpr const char* kDelivered = "delivered";
inline constexpr const char* kUndelivered = "undelivered";
inline constexpr const char* kFailed = "failed";
}  // namespace message_status

// One delivery of a verification's code (Twilio's Verification Attempt, VL): written with the
// start that asks for it, then sent by the dispatcher and updated by delivery receipts.
struct DeliveryAttempt {
  std::string sid;  // VL…, the id in the verification's send_code_attempts
  std::string account_sid;
  std::string service_sid;
  std::string verification_sid;
  std::string channel;
  std::string to;
  std::string country;  // ISO alpha-2 of the destination's calling code; empty for email
  std::string locale;
  int code_length = 6;
  // Keyring::seal of what the provider needs (rendered texts with the code): never in clear.
  std::string payload_sealed;
  std::string message_status = message_status::kQueued;
  std::string provider;  // the provider of the latest try ("dev-outbox" without providers)
  std::string provider_message_id;
  std::string error_code;  // empty when none
  std::string error_message;
  int tries = 0;           // every try, over every provider
  int provider_tries = 0;  // tries with the current provider
  bool outcome_unknown = false;
  std::int64_t next_try_ms = 0;     // when a queued attempt is due (Unix ms)
  std::int64_t lease_until_ms = 0;  // while sending: when another worker may take it over
  std::string lease_token;          // which claim owns it
  UnixTime date_created = 0;
  UnixTime date_updated = 0;
  bool converted = false;  // read-only: its verification was approved
};

// Filters of the Attempts list and summary. Empty strings and zero times filter nothing.
struct AttemptFilter {
  std::string service_sid, verification_sid, channel, to, country, destination_prefix;
  std::optional<bool> converted;
  UnixTime created_after = 0, created_before = 0;
};

struct AttemptSummary {
  std::int64_t total = 0, converted = 0;
};

// A service's Messaging Configuration: the Messaging Service (sender route) for SMS to a
// country, or to every country ("all").
struct MessagingConfiguration {
  std::string account_sid;
  std::string service_sid;
  std::string country;
  std::string messaging_service_sid;  // MG…
  UnixTime date_created = 0;
  UnixTime date_updated = 0;
};

}  // namespace verifyd
