#pragma once
// The shared store: PostgreSQL through libpq, for one or several verifyd nodes on one database.
// Behaves as SqliteStore does (same records, ordering, paging by `seq`, error kinds), with the
// database instead of a single writer thread keeping every read-modify-write atomic:
//
// - startAsync runs in one transaction that first takes pg_advisory_xact_lock on the
//   destination ('to:' || to), so every start for one number is serialised across nodes
//   (pending count, destination sends, resend detection); then Fraud Guard (its refusal
//   commits the new block), the rate limit buckets (each bucket and key locked the same way
//   before its events are counted), the pending lookup, `decide` and the writes.
// - mutateAsync locks the same destination, then the verification row (SELECT … FOR UPDATE).
// - Count limits and uniqueness of rate limits and buckets lock the parent row first.
// - claimAttempts uses FOR UPDATE SKIP LOCKED: two nodes never claim the same attempt.
// - Factors (pg_factor_store.cc): mutateFactor locks the factor row, mutateChallenge the
//   challenge's factor then the challenge (FOR UPDATE). Rows are always locked in the order
//   entity, factor, challenge (deletes included), so factor writes never wait in a cycle.
//   getOrCreateEntity inserts with ON CONFLICT DO NOTHING, then reads the row; events are
//   fanned out to the webhooks in the transaction of their change; claimWebhookDeliveries
//   uses FOR UPDATE SKIP LOCKED like claimAttempts.
// - A transaction that fails with a serialization failure (40001) or a deadlock (40P01) is
//   retried, up to 3 times: callbacks (`decide`, `change`) may run again.
// - A write returns only after COMMIT; synchronous_commit is set back to `on` on a server
//   whose default is `off`.
//
// Connections: the synchronous methods borrow one from a pool (at most `pool_size`, opened on
// demand) on the caller's thread; startAsync and mutateAsync run on `async_workers` threads,
// each with its own connection, and call their completion there after the commit.
// Failures: any libpq error or lost connection is ErrorKind::kUnavailable; the connection is
// dropped and opened again on its next use, so the store recovers by itself once PostgreSQL is
// back. Waits are bounded: connect_timeout (unless the conninfo sets one), statement_timeout on
// every connection, and a client-side limit a little longer than it.
//
// No caches: with several nodes, a change on one must be seen by the next request on another,
// so services, credentials and geo permissions are read from the database every time.
//
// Schema: versioned migrations recorded in `verifyd_schema(version)`. open() applies the
// missing ones (each in its own transaction) under pg_advisory_lock(kMigrationLock), so nodes
// starting together do not race; migrate() does only that, for a `verifyd migrate` command.
// Schema version 1 here holds the same tables and indexes as SQLite's version 6; version 2
// adds those of SQLite's version 7 (factors, challenges, webhooks and their deliveries).
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "verifyd/core/ports/factor_store.h"
#include "verifyd/core/ports/stores.h"

namespace verifyd {

namespace pg {
class Conn;
}

struct PgStoreOptions {
  int pool_size = 8;                 // connections for the synchronous methods
  int async_workers = 4;             // threads (and connections) for startAsync/mutateAsync
  int connect_timeout_s = 3;         // unless the conninfo sets connect_timeout
  int statement_timeout_ms = 10000;  // SET statement_timeout on every connection
};

class PgStore final : public Store, public FactorStore {
 public:
  // `conninfo`: a libpq connection string or URL (postgresql://user@host:port/db).
  // Applies missing migrations, then opens the store; kUnavailable when PostgreSQL cannot be
  // reached, kInternal when the database's schema is newer than this verifyd.
  static Result<std::unique_ptr<PgStore>> open(const std::string& conninfo,
                                               PgStoreOptions options = {});
  // Applies missing migrations only.
  static Status migrate(const std::string& conninfo, PgStoreOptions options = {});
  // The schema version this verifyd writes, and the lock key migrations hold.
  static constexpr int kSchemaVersion = 2;
  static constexpr std::int64_t kMigrationLock = 0x76657269667964;  // "verifyd"

  ~PgStore() override;

  Status createAccount(const Account& account) override;
  Result<std::optional<Account>> getAccount(std::string_view sid) override;
  Status createApiKey(const ApiKey& key) override;
  Result<std::optional<Credential>> findCredential(std::string_view sid) override;
  Result<std::optional<std::string>> getSetting(std::string_view key) override;
  Status putSetting(std::string_view key, std::string_view value) override;

  Status createService(const Service& service) override;
  Result<std::optional<Service>> getService(std::string_view account_sid,
                                            std::string_view sid) override;
  Result<Page<Service>> listServices(std::string_view account_sid, PageCursor cursor,
                                     int page_size) override;
  Result<Service> updateService(std::string_view account_sid, std::string_view sid,
                                const std::function<Status(Service&)>& change) override;
  Status deleteService(std::string_view account_sid, std::string_view sid) override;

  void startAsync(std::string service_sid, std::string to, UnixTime now, StartGuards guards,
                  std::function<Result<StartWrite>(const std::optional<Verification>&)> decide,
                  Completion<Verification> done) override;
  Result<std::optional<Verification>> getVerification(const VerificationKey& key) override;
  void mutateAsync(VerificationKey key,
                   std::function<Result<Verification>(const Verification&)> change,
                   Completion<Verification> done) override;

  Status createRateLimit(const RateLimit& limit, int max_per_service) override;
  Result<std::optional<RateLimit>> getRateLimit(std::string_view service_sid,
                                                std::string_view sid) override;
  Result<Page<RateLimit>> listRateLimits(std::string_view service_sid, PageCursor cursor,
                                         int page_size) override;
  Result<RateLimit> updateRateLimit(std::string_view service_sid, std::string_view sid,
                                    std::optional<std::string> description, UnixTime now) override;
  Status deleteRateLimit(std::string_view service_sid, std::string_view sid) override;
  Status createBucket(const Bucket& bucket, int max_per_limit) override;
  Result<std::optional<Bucket>> getBucket(std::string_view rate_limit_sid,
                                          std::string_view sid) override;
  Result<Page<Bucket>> listBuckets(std::string_view rate_limit_sid, PageCursor cursor,
                                   int page_size) override;
  Result<Bucket> updateBucket(std::string_view rate_limit_sid, std::string_view sid,
                              std::optional<int> max, std::optional<int> interval,
                              UnixTime now) override;
  Status deleteBucket(std::string_view rate_limit_sid, std::string_view sid) override;
  Result<std::vector<std::pair<std::string, std::optional<Bucket>>>> rateLimitsOfService(
      std::string_view service_sid) override;

  Result<SafeNumber> addSafeNumber(const SafeNumber& entry) override;
  Result<std::optional<SafeNumber>> getSafeNumber(std::string_view account_sid,
                                                  std::string_view phone_number) override;
  Status removeSafeNumber(std::string_view account_sid, std::string_view phone_number) override;
  Status setGeoPermission(std::string_view account_sid, const GeoPermission& p) override;
  Result<std::vector<GeoPermission>> geoPermissions(std::string_view account_sid) override;
  Result<std::vector<FraudBlock>> fraudBlocks(std::string_view account_sid, UnixTime now) override;
  Status liftFraudBlock(std::string_view account_sid, std::string_view prefix) override;

  Result<Page<OutboxMessage>> listMessages(std::string_view account_sid, std::string_view to,
                                           PageCursor cursor, int page_size) override;

  Result<std::vector<DeliveryAttempt>> claimAttempts(std::int64_t now_ms, std::int64_t lease_ms,
                                                     int limit,
                                                     const std::string& lease_token) override;
  Result<bool> anyAttemptDue(std::int64_t now_ms) override;
  Status finishTry(const DeliveryAttempt& a) override;
  Status applyReceipt(std::string_view sid, std::string_view status, std::string_view error_code,
                      std::string_view error_message, UnixTime now) override;
  Result<std::optional<DeliveryAttempt>> getAttempt(std::string_view account_sid,
                                                    std::string_view sid) override;
  Result<Page<DeliveryAttempt>> listAttempts(std::string_view account_sid,
                                             const AttemptFilter& filter, PageCursor cursor,
                                             int page_size) override;
  Result<AttemptSummary> summarizeAttempts(std::string_view account_sid,
                                           const AttemptFilter& filter) override;

  Status createMessagingConfig(const MessagingConfiguration& c) override;
  Result<std::optional<MessagingConfiguration>> getMessagingConfig(
      std::string_view service_sid, std::string_view country) override;
  Result<Page<MessagingConfiguration>> listMessagingConfigs(std::string_view service_sid,
                                                            PageCursor cursor,
                                                            int page_size) override;
  Result<MessagingConfiguration> updateMessagingConfig(std::string_view service_sid,
                                                       std::string_view country,
                                                       std::string_view messaging_service_sid,
                                                       UnixTime now) override;
  Status deleteMessagingConfig(std::string_view service_sid, std::string_view country) override;

  // FactorStore (pg_factor_store.cc).
  Status createEntity(const Entity& e) override;
  Result<Entity> getOrCreateEntity(const Entity& e) override;
  Result<std::optional<Entity>> getEntity(std::string_view service_sid,
                                          std::string_view identity) override;
  Result<Page<Entity>> listEntities(std::string_view service_sid, PageCursor cursor,
                                    int page_size) override;
  Status deleteEntity(std::string_view service_sid, std::string_view identity,
                      const std::vector<WebhookEvent>& events) override;
  Status createFactor(const Factor& f, const std::vector<WebhookEvent>& events) override;
  Result<std::optional<Factor>> getFactor(std::string_view service_sid, std::string_view identity,
                                          std::string_view sid) override;
  Result<Page<Factor>> listFactors(std::string_view service_sid, std::string_view identity,
                                   PageCursor cursor, int page_size) override;
  Result<Factor> mutateFactor(
      std::string_view service_sid, std::string_view identity, std::string_view sid,
      const std::function<Result<FactorChange>(const Factor&)>& change) override;
  Status deleteFactor(std::string_view service_sid, std::string_view identity, std::string_view sid,
                      const std::vector<WebhookEvent>& events) override;
  Result<int> purgeUnverifiedFactors(UnixTime before) override;
  Result<int> resealFactorSecrets(
      const std::function<Result<std::string>(const std::string&)>& reseal) override;
  Status createChallenge(const Challenge& c, const std::vector<WebhookEvent>& events,
                         const std::optional<WebhookDelivery>& push) override;
  Result<std::optional<Challenge>> getChallenge(std::string_view service_sid,
                                                std::string_view identity,
                                                std::string_view sid) override;
  Result<Page<Challenge>> listChallenges(std::string_view service_sid, std::string_view identity,
                                         const ChallengeFilter& filter, PageCursor cursor,
                                         int page_size) override;
  Result<Challenge> mutateChallenge(
      std::string_view service_sid, std::string_view identity, std::string_view sid,
      const std::function<Result<ChallengeChange>(const Challenge&, const Factor&)>& change)
      override;
  Status createAccessToken(const AccessToken& t) override;
  Result<std::optional<AccessToken>> getAccessToken(std::string_view service_sid,
                                                    std::string_view sid) override;
  Status createWebhook(const Webhook& w) override;
  Result<std::optional<Webhook>> getWebhook(std::string_view service_sid,
                                            std::string_view sid) override;
  Result<Page<Webhook>> listWebhooks(std::string_view service_sid, PageCursor cursor,
                                     int page_size) override;
  Result<Webhook> updateWebhook(std::string_view service_sid, std::string_view sid,
                                const std::function<Status(Webhook&)>& change) override;
  Status deleteWebhook(std::string_view service_sid, std::string_view sid) override;
  Status enqueueDelivery(const WebhookDelivery& d) override;
  Result<std::vector<WebhookDelivery>> claimWebhookDeliveries(
      std::int64_t now_ms, std::int64_t lease_ms, int limit,
      const std::string& lease_token) override;
  Status finishWebhookDelivery(const WebhookDelivery& d) override;
  Result<Page<WebhookDelivery>> listWebhookDeliveries(std::string_view service_sid,
                                                      PageCursor cursor, int page_size) override;

 private:
  using TxnFn = std::function<Status(pg::Conn&)>;
  class Lease;

  PgStore(std::string conninfo, PgStoreOptions options);
  // Runs `fn` in a transaction on a pooled connection, retrying serialization failures and
  // deadlocks; commits when it succeeds, rolls back otherwise.
  Status write(const TxnFn& fn);
  // Runs `fn` (a read: idempotent) on a pooled connection, once more on a fresh connection when
  // the pooled one turns out to be dead.
  Status readWith(const TxnFn& fn);
  template <class T>
  Result<T> read(const std::function<Result<T>(pg::Conn&)>& fn) {
    std::optional<T> out;
    Status st = readWith([&](pg::Conn& c) -> Status {
      auto r = fn(c);
      if (!r) return fail(r.error());
      out = std::move(*r);
      return {};
    });
    if (!st) return fail(st.error());
    return std::move(*out);
  }
  // Queues a job for a worker; it gets nullptr when the store is stopping.
  void submit(std::function<void(pg::Conn*)> job);
  void workerLoop();

  std::string conninfo_;
  PgStoreOptions options_;

  std::mutex pool_mu_;
  std::condition_variable pool_cv_;
  std::vector<std::unique_ptr<pg::Conn>> idle_;  // `pool_size` in all, connected on demand

  std::mutex mu_;
  std::condition_variable work_cv_;
  std::deque<std::function<void(pg::Conn*)>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace verifyd
