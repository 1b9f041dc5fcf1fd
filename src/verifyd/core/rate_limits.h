#pragma once
// Programmable rate limits (Twilio's Service Rate Limits) and their buckets: validation,
// identity and timestamps. Enforcement happens when a verification starts (Verifier).
#include <optional>
#include <string>

#include "verifyd/common/clock.h"
#include "verifyd/common/random.h"
#include "verifyd/common/result.h"
#include "verifyd/core/ports/stores.h"

namespace verifyd {

struct RateLimitOptions {
  int max_rate_limits_per_service = 10;  // the 11th answers 60207
  int max_buckets_per_rate_limit = 10;   // the 11th answers 60210
};

class RateLimitRegistry {
 public:
  RateLimitRegistry(ServiceStore& services, RateLimitStore& store, Clock& clock, Random& random,
                    RateLimitOptions options = {});

  // Every method first checks that the service belongs to the account (kNotFound otherwise).
  Result<RateLimit> create(const std::string& account_sid, const std::string& service_sid,
                           const std::string& unique_name, std::optional<std::string> description);
  Result<RateLimit> fetch(const std::string& account_sid, const std::string& service_sid,
                          const std::string& sid);
  Result<Page<RateLimit>> list(const std::string& account_sid, const std::string& service_sid,
                               PageCursor cursor, int page_size);
  Result<RateLimit> update(const std::string& account_sid, const std::string& service_sid,
                           const std::string& sid, std::optional<std::string> description);
  Status remove(const std::string& account_sid, const std::string& service_sid,
                const std::string& sid);

  Result<Bucket> createBucket(const std::string& account_sid, const std::string& service_sid,
                              const std::string& rate_limit_sid, std::optional<int> max,
                              std::optional<int> interval);
  Result<Bucket> fetchBucket(const std::string& account_sid, const std::string& service_sid,
                             const std::string& rate_limit_sid, const std::string& sid);
  Result<Page<Bucket>> listBuckets(const std::string& account_sid, const std::string& service_sid,
                                   const std::string& rate_limit_sid, PageCursor cursor,
                                   int page_size);
  Result<Bucket> updateBucket(const std::string& account_sid, const std::string& service_sid,
                              const std::string& rate_limit_sid, const std::string& sid,
                              std::optional<int> max, std::optional<int> interval);
  Status removeBucket(const std::string& account_sid, const std::string& service_sid,
                      const std::string& rate_limit_sid, const std::string& sid);

 private:
  Status ownService(const std::string& account_sid, const std::string& service_sid);
  Result<RateLimit> ownRateLimit(const std::string& account_sid, const std::string& service_sid,
                                 const std::string& rate_limit_sid);

  ServiceStore& services_;
  RateLimitStore& store_;
  Clock& clock_;
  Random& random_;
  RateLimitOptions options_;
};

}  // namespace verifyd
