#pragma once
// The storage interfaces the core needs. SQL lives only behind them (storage/*).
//
// Contract for every implementation:
// - Thread-safe: any method may be called from many threads at once.
// - Every read-modify-write is one call (`update`, `start`, `mutate`): the callback runs while
//   the implementation holds the row exclusively (single writer in SQLite, SELECT … FOR UPDATE
//   in PostgreSQL), and its result is written in the same transaction. Callbacks must be pure:
//   they may run again if the implementation retries a transaction.
// - A write returns (or completes) only once it is durable (committed and fsync'd).
// - Failures of the storage itself return ErrorKind::kUnavailable.
#include <functional>
#include <future>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "verifyd/common/result.h"
#include "verifyd/core/model.h"

namespace verifyd {

// Keyset paging: a page starts after (or, going back, before) the record with `seq`.
struct PageCursor {
  enum class Direction { kFirst, kAfter, kBefore };
  Direction direction = Direction::kFirst;
  long long seq = 0;
};

template <class T>
struct Page {
  std::vector<T> items;
  long long first_seq = 0, last_seq = 0;  // of the first and last items, in page order
  bool has_next = false;                  // records exist after this page
  bool has_previous = false;              // records exist before this page
};

class AccountStore {
 public:
  virtual ~AccountStore() = default;
  virtual Status createAccount(const Account& account) = 0;
  virtual Result<std::optional<Account>> getAccount(std::string_view sid) = 0;
  virtual Status createApiKey(const ApiKey& key) = 0;
  // The credential for an AC or SK sid, or nullopt.
  virtual Result<std::optional<Credential>> findCredential(std::string_view sid) = 0;
  // Small server-wide settings (the bootstrap account and service).
  virtual Result<std::optional<std::string>> getSetting(std::string_view key) = 0;
  virtual Status putSetting(std::string_view key, std::string_view value) = 0;
};

class ServiceStore {
 public:
  virtual ~ServiceStore() = default;
  virtual Status createService(const Service& service) = 0;
  // nullopt when absent or owned by another account.
  virtual Result<std::optional<Service>> getService(std::string_view account_sid,
                                                    std::string_view sid) = 0;
  // Oldest first.
  virtual Result<Page<Service>> listServices(std::string_view account_sid, PageCursor cursor,
                                             int page_size) = 0;
  // Applies `change` atomically; kNotFound when absent. Returns the stored result.
  virtual Result<Service> updateService(std::string_view account_sid, std::string_view sid,
                                        const std::function<Status(Service&)>& change) = 0;
  // Deletes the service and its verifications; kNotFound when absent.
  virtual Status deleteService(std::string_view account_sid, std::string_view sid) = 0;
};

// How a verification is addressed: by SID, or by the latest one for a service and `To`.
struct VerificationKey {
  std::string service_sid;
  std::string sid;  // when set, `to` is ignored
  std::string to;
};

// What `start` writes: the verification (new or changed), and the message for the outbox.
struct StartWrite {
  Verification verification;
  bool is_new = false;
  std::optional<OutboxMessage> message;
  std::optional<DeliveryAttempt> attempt{};  // the send attempt's delivery record
};

// Completion of an asynchronous store operation. Runs on a thread of the store's (for SQLite,
// its writer thread) after the write is durable: keep it short, and hand real work elsewhere.
template <class T>
using Completion = std::function<void(Result<T>)>;

class VerificationStore {
 public:
  virtual ~VerificationStore() = default;
  // Atomically: charges every rate limit bucket in `charges` (kRateLimited, with retry_after,
  // when one is full at `now`; nothing is written then), finds the pending verification for
  // (service, to) that has not expired at `now` (or nullopt), calls `decide`, and writes what it
  // returns (the verification and, when present, the outbox message) in one transaction.
  // `decide` must own what it uses.
  // With guards.fraud, the prefix must not be blocked (kFraudBlocked); the send is counted for
  // it, and if that makes it anomalous it is blocked and this start refused (kFraudBlocked)
  // with the block committed.
  virtual void startAsync(
      std::string service_sid, std::string to, UnixTime now, StartGuards guards,
      std::function<Result<StartWrite>(const std::optional<Verification>&)> decide,
      Completion<Verification> done) = 0;
  // The verification with the key (latest for service and `to`), whatever its status.
  virtual Result<std::optional<Verification>> getVerification(const VerificationKey& key) = 0;
  // Atomically: loads the verification as `getVerification` does (kNotFound when absent),
  // calls `change`, and stores its status, check_attempts and date_updated. A change to
  // `approved` counts as a conversion of the verification's Fraud Guard prefix.
  virtual void mutateAsync(VerificationKey key,
                           std::function<Result<Verification>(const Verification&)> change,
                           Completion<Verification> done) = 0;

  // Blocking forms of the above, for tools and tests.
  Result<Verification> start(
      std::string_view service_sid, std::string_view to, UnixTime now,
      std::function<Result<StartWrite>(const std::optional<Verification>&)> decide);
  Result<Verification> mutate(const VerificationKey& key,
                              std::function<Result<Verification>(const Verification&)> change);
};

// Programmable rate limits and their buckets, per service. Limits on counts and uniqueness are
// checked inside the write, so concurrent creates cannot exceed them.
class RateLimitStore {
 public:
  virtual ~RateLimitStore() = default;
  // kTooManyRateLimits beyond `max_per_service`; kDuplicateRateLimit for a taken unique name.
  virtual Status createRateLimit(const RateLimit& limit, int max_per_service) = 0;
  virtual Result<std::optional<RateLimit>> getRateLimit(std::string_view service_sid,
                                                        std::string_view sid) = 0;
  virtual Result<Page<RateLimit>> listRateLimits(std::string_view service_sid, PageCursor cursor,
                                                 int page_size) = 0;
  virtual Result<RateLimit> updateRateLimit(std::string_view service_sid, std::string_view sid,
                                            std::optional<std::string> description,
                                            UnixTime now) = 0;
  // Deletes the limit with its buckets and their counts; kNotFound when absent.
  virtual Status deleteRateLimit(std::string_view service_sid, std::string_view sid) = 0;

  // kTooManyBuckets beyond `max_per_limit`; kDuplicateBucket for an interval already used.
  virtual Status createBucket(const Bucket& bucket, int max_per_limit) = 0;
  virtual Result<std::optional<Bucket>> getBucket(std::string_view rate_limit_sid,
                                                  std::string_view sid) = 0;
  virtual Result<Page<Bucket>> listBuckets(std::string_view rate_limit_sid, PageCursor cursor,
                                           int page_size) = 0;
  // Applies new max and/or interval; kDuplicateBucket if the interval is taken.
  virtual Result<Bucket> updateBucket(std::string_view rate_limit_sid, std::string_view sid,
                                      std::optional<int> max, std::optional<int> interval,
                                      UnixTime now) = 0;
  virtual Status deleteBucket(std::string_view rate_limit_sid, std::string_view sid) = 0;
  // Every rate limit of the service by unique name, once per bucket (nullopt for a limit
  // without buckets): what enforcement needs, in one read.
  virtual Result<std::vector<std::pair<std::string, std::optional<Bucket>>>> rateLimitsOfService(
      std::string_view service_sid) = 0;
};

// Safe List numbers and geo permissions, per account.
class ProtectionStore {
 public:
  virtual ~ProtectionStore() = default;
  // Adds the number, or returns the entry it already has.
  virtual Result<SafeNumber> addSafeNumber(const SafeNumber& entry) = 0;
  virtual Result<std::optional<SafeNumber>> getSafeNumber(std::string_view account_sid,
                                                          std::string_view phone_number) = 0;
  // kNotFound when absent.
  virtual Status removeSafeNumber(std::string_view account_sid, std::string_view phone_number) = 0;
  virtual Status setGeoPermission(std::string_view account_sid, const GeoPermission& p) = 0;
  virtual Result<std::vector<GeoPermission>> geoPermissions(std::string_view account_sid) = 0;
  // Fraud Guard's blocks still in force at `now`, and lifting one (kNotFound when none).
  virtual Result<std::vector<FraudBlock>> fraudBlocks(std::string_view account_sid,
                                                      UnixTime now) = 0;
  virtual Status liftFraudBlock(std::string_view account_sid, std::string_view prefix) = 0;
};

class OutboxStore {
 public:
  virtual ~OutboxStore() = default;
  // Newest first; `to` empty means every destination.
  virtual Result<Page<OutboxMessage>> listMessages(std::string_view account_sid,
                                                   std::string_view to, PageCursor cursor,
                                                   int page_size) = 0;
};

// Delivery attempts: written by `start`, claimed and sent by dispatchers (on any node), updated
// by delivery receipts.
class DeliveryStore {
 public:
  virtual ~DeliveryStore() = default;
  // Claims up to `limit` attempts that are due at `now_ms`: queued ones whose next try has come,
  // and sending ones whose lease expired (their sender died: the outcome of that try is unknown,
  // which the claim records). Each is marked sending with `lease_token` until now_ms + lease_ms.
  // No two claims return the same attempt while its lease holds.
  virtual Result<std::vector<DeliveryAttempt>> claimAttempts(std::int64_t now_ms,
                                                             std::int64_t lease_ms, int limit,
                                                             const std::string& lease_token) = 0;
  // True when some attempt is due at `now_ms` (a cheap read, so idle dispatchers do not write).
  virtual Result<bool> anyAttemptDue(std::int64_t now_ms) = 0;
  // Stores the outcome of a try of a claimed attempt, unless its lease was lost (then ignored).
  // A receipt that arrived meanwhile is kept when it is further along than `a.message_status`.
  virtual Status finishTry(const DeliveryAttempt& a) = 0;
  // A delivery receipt: moves the attempt forward to `status` (never back), with its error.
  // kNotFound when the attempt does not exist.
  virtual Status applyReceipt(std::string_view sid, std::string_view status,
                              std::string_view error_code, std::string_view error_message,
                              UnixTime now) = 0;
  virtual Result<std::optional<DeliveryAttempt>> getAttempt(std::string_view account_sid,
                                                            std::string_view sid) = 0;
  // Newest first.
  virtual Result<Page<DeliveryAttempt>> listAttempts(std::string_view account_sid,
                                                     const AttemptFilter& filter, PageCursor cursor,
                                                     int page_size) = 0;
  virtual Result<AttemptSummary> summarizeAttempts(std::string_view account_sid,
                                                   const AttemptFilter& filter) = 0;
};

// Messaging Configurations of a service, one per country (or "all").
class MessagingConfigStore {
 public:
  virtual ~MessagingConfigStore() = default;
  // kDuplicateMessagingConfiguration when the country has one.
  virtual Status createMessagingConfig(const MessagingConfiguration& c) = 0;
  virtual Result<std::optional<MessagingConfiguration>> getMessagingConfig(
      std::string_view service_sid, std::string_view country) = 0;
  virtual Result<Page<MessagingConfiguration>> listMessagingConfigs(std::string_view service_sid,
                                                                    PageCursor cursor,
                                                                    int page_size) = 0;
  // kNotFound when absent.
  virtual Result<MessagingConfiguration> updateMessagingConfig(
      std::string_view service_sid, std::string_view country,
      std::string_view messaging_service_sid, UnixTime now) = 0;
  virtual Status deleteMessagingConfig(std::string_view service_sid, std::string_view country) = 0;
};

inline Result<Verification> VerificationStore::start(
    std::string_view service_sid, std::string_view to, UnixTime now,
    std::function<Result<StartWrite>(const std::optional<Verification>&)> decide) {
  std::promise<Result<Verification>> promise;
  auto future = promise.get_future();
  startAsync(std::string(service_sid), std::string(to), now, {}, std::move(decide),
             [&promise](Result<Verification> r) { promise.set_value(std::move(r)); });
  return future.get();
}

inline Result<Verification> VerificationStore::mutate(
    const VerificationKey& key, std::function<Result<Verification>(const Verification&)> change) {
  std::promise<Result<Verification>> promise;
  auto future = promise.get_future();
  mutateAsync(key, std::move(change),
              [&promise](Result<Verification> r) { promise.set_value(std::move(r)); });
  return future.get();
}

// Everything the core needs from storage, implemented together by each backend.
class Store : public AccountStore,
              public ServiceStore,
              public VerificationStore,
              public RateLimitStore,
              public ProtectionStore,
              public OutboxStore,
              public DeliveryStore,
              public MessagingConfigStore {};

}  // namespace verifyd
