#pragma once
// Sliding-window counters kept in this process's memory (the Counters port for one node):
// verification fetches, failed authentications, and rate limit buckets are counted here when no
// Redis is configured. Thread-safe; every check-and-count is one critical section, so the
// limits hold under concurrency.
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "verifyd/core/ports/counters.h"

namespace verifyd {

class MemoryCounters final : public Counters {
 public:
  Result<std::optional<std::int64_t>> acquire(const std::string& key,
                                              const std::vector<Window>& windows,
                                              UnixTime now) override;
  Result<int> record(const std::string& key, int seconds, UnixTime now) override;
  Result<int> count(const std::string& key, int seconds, UnixTime now) override;
  Result<std::optional<std::pair<std::size_t, std::int64_t>>> acquireAll(
      const std::vector<KeyWindow>& items, UnixTime now) override;

 private:
  std::deque<UnixTime>& prune(const std::string& key, UnixTime now);
  // The seconds until `q` has room in `w`, or nullopt when it has room now.
  static std::optional<std::int64_t> full(const std::deque<UnixTime>& q, const Window& w,
                                          UnixTime now);
  void sweep(UnixTime now);  // drops keys with no event left in any window

  std::mutex mu_;
  int longest_ = 0;  // the longest window any call used: events older than it are dropped
  std::unordered_map<std::string, std::deque<UnixTime>> events_;
  std::uint64_t calls_ = 0;
};

}  // namespace verifyd
