#include "verifyd/core/rate_limits.h"

#include <algorithm>
#include <cctype>

#include "verifyd/common/sid.h"

namespace verifyd {

namespace {
// A key name, not data: letters, digits, `_`, `-` and `.`, up to 64 characters.
bool validUniqueName(const std::string& s) {
  return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '_' || c == '-' || c == '.';
  });
}
}  // namespace

RateLimitRegistry::RateLimitRegistry(ServiceStore& services, RateLimitStore& store, Clock& clock,
                                     Random& random, RateLimitOptions options)
    : services_(services), store_(store), clock_(clock), random_(random), options_(options) {}

Status RateLimitRegistry::ownService(const std::string& account_sid,
                                     const std::string& service_sid) {
  auto svc = services_.getService(account_sid, service_sid);
  if (!svc) return fail(svc.error());
  if (!*svc) return fail(Error::notFound());
  return {};
}

Result<RateLimit> RateLimitRegistry::ownRateLimit(const std::string& account_sid,
                                                  const std::string& service_sid,
                                                  const std::string& rate_limit_sid) {
  if (auto st = ownService(account_sid, service_sid); !st) return fail(st.error());
  auto found = store_.getRateLimit(service_sid, rate_limit_sid);
  if (!found) return fail(found.error());
  if (!*found) return fail(Error::notFound());
  return std::move(**found);
}

Result<RateLimit> RateLimitRegistry::create(const std::string& account_sid,
                                            const std::string& service_sid,
                                            const std::string& unique_name,
                                            std::optional<std::string> description) {
  if (auto st = ownService(account_sid, service_sid); !st) return fail(st.error());
  if (unique_name.empty()) return fail(Error::missing("UniqueName"));
  if (!validUniqueName(unique_name))
    return fail(Error::of(ErrorKind::kInvalidRateLimitName,
                          "Invalid UniqueName: use up to 64 letters, digits, '_', '-' or '.'"));
  const UnixTime now = clock_.now();
  RateLimit r{makeSid("RK", random_),
              service_sid,
              account_sid,
              unique_name,
              description && !description->empty() ? description : std::nullopt,
              now,
              now};
  if (auto st = store_.createRateLimit(r, options_.max_rate_limits_per_service); !st)
    return fail(st.error());
  return r;
}

Result<RateLimit> RateLimitRegistry::fetch(const std::string& account_sid,
                                           const std::string& service_sid, const std::string& sid) {
  return ownRateLimit(account_sid, service_sid, sid);
}

Result<Page<RateLimit>> RateLimitRegistry::list(const std::string& account_sid,
                                                const std::string& service_sid, PageCursor cursor,
                                                int page_size) {
  if (auto st = ownService(account_sid, service_sid); !st) return fail(st.error());
  return store_.listRateLimits(service_sid, cursor, page_size);
}

Result<RateLimit> RateLimitRegistry::update(const std::string& account_sid,
                                            const std::string& service_sid, const std::string& sid,
                                            std::optional<std::string> description) {
  if (auto st = ownService(account_sid, service_sid); !st) return fail(st.error());
  return store_.updateRateLimit(service_sid, sid, std::move(description), clock_.now());
}

Status RateLimitRegistry::remove(const std::string& account_sid, const std::string& service_sid,
                                 const std::string& sid) {
  if (auto st = ownService(account_sid, service_sid); !st) return st;
  return store_.deleteRateLimit(service_sid, sid);
}

Result<Bucket> RateLimitRegistry::createBucket(const std::string& account_sid,
                                               const std::string& service_sid,
                                               const std::string& rate_limit_sid,
                                               std::optional<int> max,
                                               std::optional<int> interval) {
  auto limit = ownRateLimit(account_sid, service_sid, rate_limit_sid);
  if (!limit) return fail(limit.error());
  if (!max) return fail(Error::missing("Max"));
  if (!interval) return fail(Error::missing("Interval"));
  const UnixTime now = clock_.now();
  Bucket b{
      makeSid("BL", random_), rate_limit_sid, service_sid, account_sid, *max, *interval, now, now};
  if (auto st = store_.createBucket(b, options_.max_buckets_per_rate_limit); !st)
    return fail(st.error());
  return b;
}

Result<Bucket> RateLimitRegistry::fetchBucket(const std::string& account_sid,
                                              const std::string& service_sid,
                                              const std::string& rate_limit_sid,
                                              const std::string& sid) {
  auto limit = ownRateLimit(account_sid, service_sid, rate_limit_sid);
  if (!limit) return fail(limit.error());
  auto found = store_.getBucket(rate_limit_sid, sid);
  if (!found) return fail(found.error());
  if (!*found) return fail(Error::notFound());
  return std::move(**found);
}

Result<Page<Bucket>> RateLimitRegistry::listBuckets(const std::string& account_sid,
                                                    const std::string& service_sid,
                                                    const std::string& rate_limit_sid,
                                                    PageCursor cursor, int page_size) {
  auto limit = ownRateLimit(account_sid, service_sid, rate_limit_sid);
  if (!limit) return fail(limit.error());
  return store_.listBuckets(rate_limit_sid, cursor, page_size);
}

Result<Bucket> RateLimitRegistry::updateBucket(const std::string& account_sid,
                                               const std::string& service_sid,
                                               const std::string& rate_limit_sid,
                                               const std::string& sid, std::optional<int> max,
                                               std::optional<int> interval) {
  auto limit = ownRateLimit(account_sid, service_sid, rate_limit_sid);
  if (!limit) return fail(limit.error());
  return store_.updateBucket(rate_limit_sid, sid, max, interval, clock_.now());
}

Status RateLimitRegistry::removeBucket(const std::string& account_sid,
                                       const std::string& service_sid,
                                       const std::string& rate_limit_sid, const std::string& sid) {
  auto limit = ownRateLimit(account_sid, service_sid, rate_limit_sid);
  if (!limit) return fail(limit.error());
  return store_.deleteBucket(rate_limit_sid, sid);
}

}  // namespace verifyd
