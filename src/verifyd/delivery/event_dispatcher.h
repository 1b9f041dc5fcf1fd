#pragma once
// The dispatcher of the factor outbox (FactorStore's WebhookDelivery rows): webhook events,
// POSTed to the customer's URL and signed like Twilio's callbacks (X-Twilio-Signature), and
// push notifications, handed to the push providers. Claims rows under a lease like the
// verification dispatcher, so that several nodes share the work and a node that died mid-try
// has its rows taken over; retries with exponential backoff and jitter up to a maximum of tries.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "verifyd/common/random.h"
#include "verifyd/core/ports/factor_store.h"
#include "verifyd/core/ports/keyring.h"
#include "verifyd/core/ports/stores.h"
#include "verifyd/delivery/leased_workers.h"
#include "verifyd/delivery/providers.h"

namespace verifyd {

struct EventDispatchOptions {
  int workers = 4;                // webhook or push calls in flight at once
  int max_tries = 8;              // then the delivery is failed
  int retry_initial_ms = 30000;   // backoff: initial * 2^(try-1), capped, with equal jitter:
  int retry_max_ms = 30 * 60000;  //   8 tries span about an hour with these defaults
  int lease_ms = 30000;           // a try not finished by then (its node died) is taken over
  int poll_ms = 500;              // how often an idle dispatcher looks for due deliveries
  int timeout_ms = 10000;         // one webhook call
  std::string user_agent = "TwilioProxy/1.1 (verifyd)";
};

// A push provider in the order of the config file.
struct PushRoute {
  std::string name;
  PushSender* sender = nullptr;  // owned by the caller, outlives the dispatcher
};

class EventDispatcher {
 public:
  EventDispatcher(FactorStore& factors, AccountStore& accounts, const Keyring& keyring,
                  Random& random, EventDispatchOptions options, std::vector<PushRoute> push);
  ~EventDispatcher();
  EventDispatcher(const EventDispatcher&) = delete;
  EventDispatcher& operator=(const EventDispatcher&) = delete;

  // Starts the claimer and the workers; `stop` finishes calls in flight, hands back what was
  // claimed but not started, and joins them. Each runs once.
  void start();
  void stop();
  // Deliveries were committed: look for them now. Cheap and non-blocking.
  void nudge();

  // The URL a JSON webhook is POSTed to: `url` with bodySHA256=<hex SHA-256 of body> added to
  // its query (any fragment dropped), as Twilio does for JSON bodies.
  static std::string signedUrl(std::string_view url, std::string_view body);
  // X-Twilio-Signature of a request to `url` with no form parameters: Base64 of
  // HMAC-SHA1(auth_token, url).
  static std::string signature(std::string_view auth_token, std::string_view url);

 private:
  void process(WebhookDelivery d);
  // Sends one try; returns true when it was delivered, else fills `error` and `retryable`.
  bool sendWebhook(const WebhookDelivery& d, std::string& error, bool& retryable);
  bool sendPush(const WebhookDelivery& d, std::string& error, bool& retryable);

  FactorStore& factors_;
  AccountStore& accounts_;
  const Keyring& keyring_;
  Random& random_;
  EventDispatchOptions options_;
  std::vector<PushRoute> push_;
  std::string lease_token_;

  LeasedWorkers<WebhookDelivery> workers_;  // last: its threads use the members above
};

}  // namespace verifyd
