#pragma once
// Storage of factors and what hangs off them. Same contract as stores.h: thread-safe, every
// read-modify-write one call whose callback runs while the row is held (it may run again if
// the implementation retries), writes durable when they return, kUnavailable on storage
// failure. Events returned by a change are fanned out to the service's webhooks in the same
// transaction, so a change is never committed without its webhook deliveries or vice versa.
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "verifyd/common/result.h"
#include "verifyd/core/factor_model.h"
#include "verifyd/core/ports/stores.h"

namespace verifyd {

struct FactorChange {
  Factor factor;
  std::vector<WebhookEvent> events;
};
struct ChallengeChange {
  Challenge challenge;
  Factor factor;  // written too (failed attempts, last TOTP step)
  std::vector<WebhookEvent> events;
};

struct ChallengeFilter {
  std::string factor_sid;   // empty: any
  std::string status;       // empty: any
  bool descending = false;  // Order=desc
};

class FactorStore {
 public:
  virtual ~FactorStore() = default;

  // Entities. createEntity: kDuplicateEntity when the identity exists in the service.
  virtual Status createEntity(const Entity& e) = 0;
  // The entity, created (with `e`) when absent: factor creation makes its entity implicitly.
  virtual Result<Entity> getOrCreateEntity(const Entity& e) = 0;
  virtual Result<std::optional<Entity>> getEntity(std::string_view service_sid,
                                                  std::string_view identity) = 0;
  virtual Result<Page<Entity>> listEntities(std::string_view service_sid, PageCursor cursor,
                                            int page_size) = 0;
  // Deletes the entity with its factors and challenges; kNotFound when absent. `events` (one
  // factor.deleted per factor, built by the caller from the factors it read) are fanned out.
  virtual Status deleteEntity(std::string_view service_sid, std::string_view identity,
                              const std::vector<WebhookEvent>& events) = 0;

  // Factors.
  virtual Status createFactor(const Factor& f, const std::vector<WebhookEvent>& events) = 0;
  virtual Result<std::optional<Factor>> getFactor(std::string_view service_sid,
                                                  std::string_view identity,
                                                  std::string_view sid) = 0;
  virtual Result<Page<Factor>> listFactors(std::string_view service_sid, std::string_view identity,
                                           PageCursor cursor, int page_size) = 0;
  // kNotFound when absent; else stores what `change` returns (all factor fields but ids).
  virtual Result<Factor> mutateFactor(
      std::string_view service_sid, std::string_view identity, std::string_view sid,
      const std::function<Result<FactorChange>(const Factor&)>& change) = 0;
  virtual Status deleteFactor(std::string_view service_sid, std::string_view identity,
                              std::string_view sid, const std::vector<WebhookEvent>& events) = 0;
  // Unverified factors created before `before` are deleted (purge); returns how many.
  virtual Result<int> purgeUnverifiedFactors(UnixTime before) = 0;
  // Key rotation: every factor's secret_sealed through `reseal`, in one transaction.
  virtual Result<int> resealFactorSecrets(
      const std::function<Result<std::string>(const std::string&)>& reseal) = 0;

  // Challenges. `push`, when set, is queued as a kind "push" delivery in the same transaction
  // (the first notification of a push challenge).
  virtual Status createChallenge(const Challenge& c, const std::vector<WebhookEvent>& events,
                                 const std::optional<WebhookDelivery>& push) = 0;
  virtual Result<std::optional<Challenge>> getChallenge(std::string_view service_sid,
                                                        std::string_view identity,
                                                        std::string_view sid) = 0;
  virtual Result<Page<Challenge>> listChallenges(std::string_view service_sid,
                                                 std::string_view identity,
                                                 const ChallengeFilter& filter, PageCursor cursor,
                                                 int page_size) = 0;
  // Holds the challenge and its factor; stores both as `change` returns them.
  virtual Result<Challenge> mutateChallenge(
      std::string_view service_sid, std::string_view identity, std::string_view sid,
      const std::function<Result<ChallengeChange>(const Challenge&, const Factor&)>& change) = 0;

  // Access tokens.
  virtual Status createAccessToken(const AccessToken& t) = 0;
  virtual Result<std::optional<AccessToken>> getAccessToken(std::string_view service_sid,
                                                            std::string_view sid) = 0;

  // Webhooks.
  virtual Status createWebhook(const Webhook& w) = 0;
  virtual Result<std::optional<Webhook>> getWebhook(std::string_view service_sid,
                                                    std::string_view sid) = 0;
  virtual Result<Page<Webhook>> listWebhooks(std::string_view service_sid, PageCursor cursor,
                                             int page_size) = 0;
  virtual Result<Webhook> updateWebhook(std::string_view service_sid, std::string_view sid,
                                        const std::function<Status(Webhook&)>& change) = 0;
  virtual Status deleteWebhook(std::string_view service_sid, std::string_view sid) = 0;

  // Queues one outbound delivery (a push notification re-sent through Notifications).
  virtual Status enqueueDelivery(const WebhookDelivery& d) = 0;
  // Webhook deliveries (the outbox of events), claimed like delivery attempts.
  virtual Result<std::vector<WebhookDelivery>> claimWebhookDeliveries(
      std::int64_t now_ms, std::int64_t lease_ms, int limit, const std::string& lease_token) = 0;
  virtual Status finishWebhookDelivery(const WebhookDelivery& d) = 0;
  // For tests and operators: the deliveries of a service, newest first.
  virtual Result<Page<WebhookDelivery>> listWebhookDeliveries(std::string_view service_sid,
                                                              PageCursor cursor, int page_size) = 0;
};

}  // namespace verifyd
