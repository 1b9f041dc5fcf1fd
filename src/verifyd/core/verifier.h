#pragma once
// The verification use cases: start (or resend), check, fetch and update.
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "verifyd/common/clock.h"
#include "verifyd/common/random.h"
#include "verifyd/common/result.h"
#include "verifyd/core/model.h"
#include "verifyd/core/ports/delivery.h"
#include "verifyd/core/ports/keyring.h"
#include "verifyd/core/ports/phone_numbers.h"
#include "verifyd/core/ports/stores.h"
#include "verifyd/core/window_limiter.h"

namespace verifyd {

struct VerifierOptions {
  int code_ttl_seconds = 600;  // Twilio: a code is valid for 10 minutes
  int max_send_attempts = 5;   // sends per verification; the 6th answers kMaxSendAttempts
  // Sends to one destination (service and `To`) across verifications within the window: a new
  // verification does not reset the count (Twilio's per-number limit). 0 turns it off.
  int max_sends_per_destination = 5;
  int destination_window_seconds = 600;
  int max_pending_per_number = 5;  // concurrent pending verifications to one number (60212)
  // Fetches of one verification (Twilio: 60 a minute, 180 an hour, 250 a day).
  std::vector<Window> fetch_limits = {{60, 60}, {180, 3600}, {250, 86400}};
  // Server-wide geo blocks ("sms:CU"), for accounts without a rule of their own.
  std::set<std::string> geo_blocked;
  // Fraud Guard (SMS pumping): off, basic, standard or max.
  std::string fraud_guard = "standard";
  int max_check_attempts = 5;  // checks per verification; the 5th wrong one ends it
  bool dev_outbox = true;      // keep every message in the dev outbox
  // Charge programmable rate limit buckets in the shared Counters (Redis, several nodes)
  // instead of in the start's transaction.
  bool buckets_in_counters = false;
};

struct StartParams {
  std::string to;
  std::string channel;
  std::optional<std::string> custom_code;
  std::optional<std::string> custom_friendly_name;
  std::optional<std::string> amount;
  std::optional<std::string> payee;
  // `RateLimits`: unique name of a rate limit of the service -> the value to count under.
  std::vector<std::pair<std::string, std::string>> rate_limits;
  bool risk_check = true;      // `RiskCheck=disable` skips geo permissions for this start
  std::string locale{};        // `Locale`, empty for the destination's
  std::string app_hash{};      // `AppHash`
  std::string template_sid{};  // `TemplateSid`
  std::map<std::string, std::string> template_substitutions{};  // `TemplateCustomSubstitutions`
  // email: `ChannelConfiguration`
  std::string email_from{}, email_from_name{};
  std::map<std::string, std::string> email_substitutions{};
};

struct CheckParams {
  std::optional<std::string> to;
  std::optional<std::string> verification_sid;
  std::optional<std::string> code;
  std::optional<std::string> amount;
  std::optional<std::string> payee;
};

// Called after a message is stored, to log or hand it on. Never called with a lock held.
using MessageSink = std::function<void(const OutboxMessage&)>;
// Where completions run. The store completes writes on its own thread; the executor moves the
// rest of the work (logging, encoding the reply) off it. The default runs inline.
using Executor = std::function<void(std::function<void()>)>;
template <class T>
using Done = std::function<void(Result<T>)>;

class Verifier {
 public:
  Verifier(Store& store, const Keyring& keyring, const PhoneNumbers& phones, Clock& clock,
           Random& random, VerifierOptions options, MessageSink sink = {}, Executor executor = {},
           Delivery* delivery = nullptr, Counters* counters = nullptr);

  // Starts a verification, or resends the pending one for the same service and `To` (same
  // SID, same code, one more send attempt). Errors: kNotFound (service), kInvalidArgument /
  // kMissingArgument (To, Channel, CustomCode), kFeatureNotSupported (custom code not enabled),
  // kMaxSendAttempts.
  void startAsync(const std::string& account_sid, const std::string& service_sid,
                  const StartParams& params, Done<Verification> done);
  // Checks a code. A wrong code leaves the verification pending; the last allowed wrong code
  // ends it as max_attempts_reached. Errors: kNotFound (unknown, ended or expired),
  // kMaxCheckAttempts (ended by failed checks and not yet expired), kInvalidArgument.
  void checkAsync(const std::string& account_sid, const std::string& service_sid,
                  const CheckParams& params, Done<Verification> done);
  // A pending verification by SID or by `To`; kNotFound once it has ended or expired;
  // kRateLimited beyond the fetch limits of one verification.
  Result<Verification> fetch(const std::string& account_sid, const std::string& service_sid,
                             const std::string& sid_or_to);
  // Sets status `canceled` or `approved` on a pending verification.
  void updateAsync(const std::string& account_sid, const std::string& service_sid,
                   const std::string& sid_or_to, const std::string& new_status,
                   Done<Verification> done);

  // Blocking forms, for tools and tests.
  Result<Verification> start(const std::string& account_sid, const std::string& service_sid,
                             const StartParams& params);
  Result<Verification> check(const std::string& account_sid, const std::string& service_sid,
                             const CheckParams& params);
  Result<Verification> update(const std::string& account_sid, const std::string& service_sid,
                              const std::string& sid_or_to, const std::string& new_status);

 private:
  Result<Service> service(const std::string& account_sid, const std::string& service_sid);
  VerificationKey keyFor(const std::string& service_sid, const std::string& sid_or_to) const;
  bool live(const Verification& v, UnixTime now) const;
  // Wraps a completion so that it runs on the executor, off the store's thread.
  Done<Verification> completeOn(Done<Verification> done);
  // The message for a start, through `delivery_` or, without one, the built-in English text.
  Result<ComposedMessage> compose(const ComposeRequest& request) const;

  Store& store_;
  const Keyring& keyring_;
  const PhoneNumbers& phones_;
  Clock& clock_;
  Random& random_;
  VerifierOptions options_;
  MessageSink sink_;
  Executor executor_;
  Delivery* delivery_;
  MemoryCounters own_counters_;  // when none are given
  Counters& counters_;
};

}  // namespace verifyd
