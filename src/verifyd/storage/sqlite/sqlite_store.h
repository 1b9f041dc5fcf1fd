#pragma once
// The embedded store: SQLite in WAL mode.
//
// Writes go through one writer thread that commits them in groups: every request that arrives
// while a commit is in flight joins the next transaction, so one fsync serves many requests.
// Each write runs in its own SAVEPOINT, so one failing request never undoes another. Because
// there is a single writer, every read-modify-write is serialized: attempt counters hold under
// any concurrency. Reads use a pool of separate connections and never wait for the writer.
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "verifyd/core/ports/factor_store.h"
#include "verifyd/core/ports/stores.h"
#include "verifyd/storage/sqlite/sqlite_db.h"

namespace verifyd {

class SqliteStore final : public Store, public FactorStore {
 public:
  // `durable` = fsync each commit (production). Tests of logic may turn it off.
  static Result<std::unique_ptr<SqliteStore>> open(const std::string& path, bool durable = true);
  ~SqliteStore() override;

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

  // FactorStore (sqlite_factor_store.cc).
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

  // Figures for benchmarks: transactions committed and writes they carried.
  std::uint64_t commits() const;
  std::uint64_t writes() const;

 private:
  using WriteFn = std::function<Status(sqlite::Db&)>;
  struct Job {
    WriteFn fn;
    std::function<void(Status)> done;  // called on the writer thread after the commit
  };
  class ReaderLease;

  SqliteStore(std::string path, bool durable, std::unique_ptr<sqlite::Db> writer);
  Status write(WriteFn fn);  // blocks until committed (or failed)
  void writeAsync(WriteFn fn, std::function<void(Status)> done);
  template <class T>
  Result<T> read(const std::function<Result<T>(sqlite::Db&)>& fn);
  void writerLoop();
  void checkpointLoop();
  static constexpr int kCheckpointPages = 4000;  // about 16 MB of WAL

  std::string path_;
  bool durable_;
  std::unique_ptr<sqlite::Db> writer_db_;

  mutable std::mutex mu_;
  std::condition_variable work_cv_;
  std::deque<std::unique_ptr<Job>> queue_;
  bool stopping_ = false;
  std::uint64_t commits_ = 0, writes_ = 0;
  std::thread writer_;

  std::mutex checkpoint_mu_;
  std::condition_variable checkpoint_cv_;
  bool checkpoint_wanted_ = false, checkpoint_stopping_ = false;
  std::thread checkpointer_;

  // Services and credentials are read on every request and change rarely: they are cached.
  // A write bumps the generation and drops the entry; a read fills the cache only if no write
  // happened while it read, so a stale row can never be cached after a newer one.
  std::shared_mutex cache_mu_;
  std::uint64_t service_generation_ = 0;
  std::unordered_map<std::string, Service> service_cache_;
  std::unordered_map<std::string, Credential> credential_cache_;  // accounts and keys never change
  std::uint64_t geo_generation_ = 0;
  std::unordered_map<std::string, std::vector<GeoPermission>> geo_cache_;
  void forgetService(std::string_view sid);

  std::mutex readers_mu_;
  std::vector<std::unique_ptr<sqlite::Db>> readers_;
};

}  // namespace verifyd
