#include "verifyd/core/window_limiter.h"

#include <algorithm>

namespace verifyd {

std::deque<UnixTime>& MemoryCounters::prune(const std::string& key, UnixTime now) {
  if (++calls_ % 4096 == 0) sweep(now);
  auto& q = events_[key];
  while (!q.empty() && q.front() <= now - longest_) q.pop_front();
  return q;
}

void MemoryCounters::sweep(UnixTime now) {
  for (auto it = events_.begin(); it != events_.end();) {
    if (it->second.empty() || it->second.back() <= now - longest_)
      it = events_.erase(it);
    else
      ++it;
  }
}

std::optional<std::int64_t> MemoryCounters::full(const std::deque<UnixTime>& q, const Window& w,
                                                 UnixTime now) {
  // Events inside this window: the newest ones, since the queue is in time order.
  auto first = std::upper_bound(q.begin(), q.end(), now - w.seconds);
  auto n = static_cast<int>(q.end() - first);
  if (n < w.max) return std::nullopt;
  if (w.max <= 0) return std::max<std::int64_t>(1, w.seconds);
  // It frees up when the event `max` places from the end leaves the window.
  return std::max<std::int64_t>(1, *(q.end() - w.max) + w.seconds - now);
}

Result<std::optional<std::int64_t>> MemoryCounters::acquire(const std::string& key,
                                                            const std::vector<Window>& windows,
                                                            UnixTime now) {
  std::lock_guard lock(mu_);
  for (const auto& w : windows) longest_ = std::max(longest_, w.seconds);
  auto& q = prune(key, now);
  std::optional<std::int64_t> wait;
  for (const auto& w : windows)
    if (auto until = full(q, w, now)) wait = std::max(wait.value_or(0), *until);
  if (!wait) q.push_back(now);
  return wait;
}

Result<int> MemoryCounters::record(const std::string& key, int seconds, UnixTime now) {
  std::lock_guard lock(mu_);
  longest_ = std::max(longest_, seconds);
  auto& q = prune(key, now);
  q.push_back(now);
  return static_cast<int>(q.end() - std::upper_bound(q.begin(), q.end(), now - seconds));
}

Result<int> MemoryCounters::count(const std::string& key, int seconds, UnixTime now) {
  std::lock_guard lock(mu_);
  longest_ = std::max(longest_, seconds);
  auto& q = prune(key, now);
  return static_cast<int>(q.end() - std::upper_bound(q.begin(), q.end(), now - seconds));
}

Result<std::optional<std::pair<std::size_t, std::int64_t>>> MemoryCounters::acquireAll(
    const std::vector<KeyWindow>& items, UnixTime now) {
  std::lock_guard lock(mu_);
  for (const auto& item : items) longest_ = std::max(longest_, item.window.seconds);
  for (std::size_t i = 0; i < items.size(); ++i)
    if (auto wait = full(prune(items[i].key, now), items[i].window, now))
      return std::optional(std::pair{i, *wait});
  for (const auto& item : items) events_[item.key].push_back(now);
  return std::optional<std::pair<std::size_t, std::int64_t>>();
}

}  // namespace verifyd
