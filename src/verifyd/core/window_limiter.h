#pragma once
// Sliding-window counters kept in this process's memory: the built-in limits that need no
// durability (verification fetches, failed authentication). Thread-safe; every check-and-count
// is one critical section, so the limits hold under concurrency.
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "verifyd/common/clock.h"

namespace verifyd {

struct Window {
  int max = 0;      // events allowed …
  int seconds = 0;  // … per this many seconds
};

class WindowLimiter {
 public:
  explicit WindowLimiter(std::vector<Window> windows);

  // Counts an event for `key` unless a window is full; then counts nothing and returns the
  // seconds until the event would be allowed.
  std::optional<std::int64_t> acquire(const std::string& key, UnixTime now);
  // Counts an event for `key` regardless, and returns how many the longest window now holds.
  int record(const std::string& key, UnixTime now);
  // Events of `key` in the longest window.
  int count(const std::string& key, UnixTime now);

 private:
  std::deque<UnixTime>& prune(const std::string& key, UnixTime now);
  void sweep(UnixTime now);  // drops keys with no event left in any window

  std::vector<Window> windows_;
  int longest_ = 0;
  std::mutex mu_;
  std::unordered_map<std::string, std::deque<UnixTime>> events_;
  std::uint64_t calls_ = 0;
};

}  // namespace verifyd
