#include "verifyd/core/window_limiter.h"

#include <algorithm>

namespace verifyd {

WindowLimiter::WindowLimiter(std::vector<Window> windows) : windows_(std::move(windows)) {
  for (const auto& w : windows_) longest_ = std::max(longest_, w.seconds);
}

std::deque<UnixTime>& WindowLimiter::prune(const std::string& key, UnixTime now) {
  if (++calls_ % 4096 == 0) sweep(now);
  auto& q = events_[key];
  while (!q.empty() && q.front() <= now - longest_) q.pop_front();
  return q;
}

void WindowLimiter::sweep(UnixTime now) {
  for (auto it = events_.begin(); it != events_.end();) {
    if (it->second.empty() || it->second.back() <= now - longest_)
      it = events_.erase(it);
    else
      ++it;
  }
}

std::optional<std::int64_t> WindowLimiter::acquire(const std::string& key, UnixTime now) {
  std::lock_guard lock(mu_);
  auto& q = prune(key, now);
  std::optional<std::int64_t> wait;
  for (const auto& w : windows_) {
    // Events inside this window: the newest ones, since the queue is in time order.
    auto first = std::upper_bound(q.begin(), q.end(), now - w.seconds);
    auto n = static_cast<int>(q.end() - first);
    if (n >= w.max) {
      // It frees up when the event `max` places from the end leaves the window.
      std::int64_t until = *(q.end() - w.max) + w.seconds - now;
      wait = std::max<std::int64_t>(wait.value_or(0), std::max<std::int64_t>(1, until));
    }
  }
  if (!wait) q.push_back(now);
  return wait;
}

int WindowLimiter::record(const std::string& key, UnixTime now) {
  std::lock_guard lock(mu_);
  auto& q = prune(key, now);
  q.push_back(now);
  return static_cast<int>(q.size());
}

int WindowLimiter::count(const std::string& key, UnixTime now) {
  std::lock_guard lock(mu_);
  return static_cast<int>(prune(key, now).size());
}

}  // namespace verifyd
