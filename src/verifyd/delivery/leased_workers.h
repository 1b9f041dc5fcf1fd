#pragma once
// The machinery both dispatchers (verification messages, webhook events and push notifications)
// share: one thread claims leased work from the store for idle workers only (a lease starts
// ticking at the claim), worker threads process it, and stop() hands back what was claimed but
// never started. What to claim, how to process and how to hand back come in as functions.
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "verifyd/common/random.h"

namespace verifyd {

inline std::int64_t unixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Exponential backoff with equal jitter (half fixed, half random, so that the retries of a
// burst spread out): initial * 2^(tries-1), capped.
inline std::int64_t backoffMs(int tries, int initial_ms, int max_ms, Random& random) {
  const std::int64_t cap = std::max(1, max_ms);
  std::int64_t delay = std::max(1, initial_ms);
  for (int i = 1; i < tries && delay < cap; ++i) delay *= 2;
  delay = std::min(delay, cap);
  std::uint32_t r = 0;
  random.fill(reinterpret_cast<std::uint8_t*>(&r), sizeof r);
  return delay / 2 + static_cast<std::int64_t>(r % static_cast<std::uint32_t>(delay / 2 + 1));
}

template <class Item>
class LeasedWorkers {
 public:
  struct Hooks {
    std::function<std::vector<Item>(int want)> claim;  // up to `want` due items (may be none)
    std::function<void(Item)> process;
    std::function<void(Item&)> hand_back;  // at stop: claimed, never started
  };
  LeasedWorkers(Hooks hooks, int workers, int poll_ms)
      : hooks_(std::move(hooks)), workers_(std::max(1, workers)), poll_ms_(std::max(10, poll_ms)) {}
  ~LeasedWorkers() { stop(); }
  LeasedWorkers(const LeasedWorkers&) = delete;
  LeasedWorkers& operator=(const LeasedWorkers&) = delete;

  void start() {
    std::lock_guard lock(mu_);
    if (started_ || stopping_) return;
    started_ = true;
    claimer_ = std::thread([this] { claimLoop(); });
    for (int i = 0; i < workers_; ++i) threads_.emplace_back([this] { workerLoop(); });
  }

  void stop() {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    wake_cv_.notify_all();
    work_cv_.notify_all();
    if (claimer_.joinable()) claimer_.join();
    for (auto& t : threads_) t.join();
    threads_.clear();
    for (auto& item : work_) hooks_.hand_back(item);
    work_.clear();
  }

  // Work may be due (just committed): claim soon rather than at the next poll.
  void nudge() {
    {
      std::lock_guard lock(mu_);
      wake_ = true;
    }
    wake_cv_.notify_one();
  }

 private:
  void claimLoop() {
    std::unique_lock lock(mu_);
    while (!stopping_) {
      wake_cv_.wait_for(lock, std::chrono::milliseconds(poll_ms_),
                        [&] { return stopping_ || (wake_ && idle_ > 0); });
      if (stopping_) break;
      wake_ = false;
      const int want = idle_ - static_cast<int>(work_.size());
      if (want <= 0) continue;
      lock.unlock();
      std::vector<Item> claimed = hooks_.claim(want);
      lock.lock();
      for (auto& item : claimed) work_.push_back(std::move(item));
      if (!claimed.empty()) {
        work_cv_.notify_all();
        // A full batch suggests more is due: look again as soon as a worker is free.
        if (static_cast<int>(claimed.size()) == want) wake_ = true;
      }
    }
  }

  void workerLoop() {
    std::unique_lock lock(mu_);
    for (;;) {
      ++idle_;
      wake_ = true;
      wake_cv_.notify_one();
      work_cv_.wait(lock, [&] { return stopping_ || !work_.empty(); });
      --idle_;
      if (stopping_) return;
      Item item = std::move(work_.front());
      work_.pop_front();
      lock.unlock();
      hooks_.process(std::move(item));
      lock.lock();
    }
  }

  Hooks hooks_;
  const int workers_;
  const int poll_ms_;
  std::mutex mu_;
  std::condition_variable wake_cv_;  // the claimer: work may be due
  std::condition_variable work_cv_;  // the workers: items to process
  std::deque<Item> work_;
  int idle_ = 0;
  bool wake_ = false;
  bool started_ = false;
  bool stopping_ = false;
  std::thread claimer_;
  std::vector<std::thread> threads_;
};

}  // namespace verifyd
