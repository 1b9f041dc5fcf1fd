#pragma once
// Sliding-window counters for the limits that need no durability but must hold across every
// node: verification fetches, failed authentications per client address, and the programmable
// rate limit buckets when Redis is configured. In one process: MemoryCounters
// (core/window_limiter.h); across nodes: RedisCounters (storage/redis). Thread-safe; each call
// is atomic (one Lua script in Redis), so limits hold under concurrency.
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "verifyd/common/clock.h"
#include "verifyd/common/result.h"

namespace verifyd {

struct Window {
  int max = 0;      // events allowed …
  int seconds = 0;  // … per this many seconds
};

// One key with its own window, for all-or-nothing charges (a start's rate limit buckets).
struct KeyWindow {
  std::string key;
  Window window;
};

class Counters {
 public:
  virtual ~Counters() = default;
  // Counts an event for `key` at `now` unless one of `windows` is full; then counts nothing and
  // returns the seconds until the event would be allowed (at least 1).
  virtual Result<std::optional<std::int64_t>> acquire(const std::string& key,
                                                      const std::vector<Window>& windows,
                                                      UnixTime now) = 0;
  // Counts an event for `key` regardless; returns the events within the last `seconds`.
  virtual Result<int> record(const std::string& key, int seconds, UnixTime now) = 0;
  // Events of `key` within the last `seconds`.
  virtual Result<int> count(const std::string& key, int seconds, UnixTime now) = 0;
  // Counts one event for every key unless one of them is full: then nothing is counted and the
  // answer is the index of the first full one and the seconds until it has room.
  virtual Result<std::optional<std::pair<std::size_t, std::int64_t>>> acquireAll(
      const std::vector<KeyWindow>& items, UnixTime now) = 0;
};

}  // namespace verifyd
