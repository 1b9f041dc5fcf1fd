#pragma once
// Delivery: composes each start's message in its locale, stores nothing itself (the start's
// transaction writes the attempt), and runs the dispatcher that sends stored attempts through
// the configured providers, off the request path, with retries, backoff and fail-over, and
// applies delivery receipts.
#include <memory>
#include <string>
#include <vector>

#include "verifyd/common/random.h"
#include "verifyd/core/ports/delivery.h"
#include "verifyd/core/ports/factor_store.h"
#include "verifyd/core/ports/keyring.h"
#include "verifyd/core/ports/phone_numbers.h"
#include "verifyd/core/ports/stores.h"
#include "verifyd/delivery/event_dispatcher.h"
#include "verifyd/delivery/leased_workers.h"
#include "verifyd/delivery/providers.h"
#include "verifyd/delivery/sender.h"

namespace verifyd {

struct DeliveryOptions {
  int workers = 16;            // provider calls in flight at once
  int max_tries = 3;           // per provider, before failing over to the next one
  int retry_initial_ms = 500;  // backoff: initial * 2^(try-1), capped, with jitter
  int retry_max_ms = 60000;
  int lease_ms = 30000;    // a try not finished by then (its node died) is taken over
  int poll_ms = 500;       // how often an idle dispatcher looks for due retries
  std::string public_url;  // base of the status callback URLs
  // Webhook events and push notifications (the factor outbox): tries in all, backoff between
  // them (8 tries over about an hour by default), calls in flight, one webhook call's timeout.
  int event_max_tries = 8;
  int event_retry_initial_ms = 30000;
  int event_retry_max_ms = 30 * 60000;
  int event_workers = 4;
  int event_timeout_ms = 10000;
  std::vector<ProviderConfig> providers;
};

// Reads the [delivery] table and [[provider]] tables of a TOML config file.
Result<DeliveryOptions> loadDeliveryConfig(const std::string& path);

class DeliveryService final : public Delivery {
 public:
  // Builds every provider (kInvalidArgument naming a bad setting). With `factors`, also the
  // dispatcher of its outbox (webhook events, push notifications), which runs whether or not
  // any provider is configured; `accounts` (default: `store`) gives the auth tokens that sign
  // webhooks.
  static Result<std::unique_ptr<DeliveryService>> create(Store& store, const Keyring& keyring,
                                                         const PhoneNumbers& phones, Random& random,
                                                         DeliveryOptions options,
                                                         FactorStore* factors = nullptr,
                                                         AccountStore* accounts = nullptr);
  ~DeliveryService() override;

  // Starts the dispatcher threads; `stop` finishes tries in flight and joins them.
  void start();
  void stop();

  Result<ComposedMessage> compose(const ComposeRequest& request) const override;
  bool dispatches(std::string_view channel) const override;
  void queued() override;
  Status receipt(const Receipt& receipt) override;
  void eventsQueued() override;

  // The token that authenticates callbacks for an attempt.
  std::string callbackToken(std::string_view attempt_sid) const;

 private:
  struct Provider {
    ProviderConfig config;
    std::unique_ptr<Sender> sender;    // verification messages (null for push-only types)
    std::unique_ptr<PushSender> push;  // channel "push"
  };
  DeliveryService(Store& store, const Keyring& keyring, const PhoneNumbers& phones, Random& random,
                  DeliveryOptions options);

  void process(DeliveryAttempt attempt);
  // The providers for a channel and country, the Messaging Configuration's route first.
  std::vector<const Provider*> route(const DeliveryAttempt& a,
                                     const std::string& messaging_service_sid) const;

  Store& store_;
  const Keyring& keyring_;
  const PhoneNumbers& phones_;
  Random& random_;
  DeliveryOptions options_;
  std::vector<Provider> providers_;
  std::string lease_token_;                  // this node's claims
  std::unique_ptr<EventDispatcher> events_;  // null without a FactorStore

  std::unique_ptr<LeasedWorkers<DeliveryAttempt>> messages_;  // null without a provider
};

}  // namespace verifyd
