#include "verifyd/core/window_limiter.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace verifyd {
namespace {

TEST(WindowLimiter, EveryWindowHoldsAndReportsTheWait) {
  WindowLimiter limiter({{2, 10}, {3, 100}});
  EXPECT_FALSE(limiter.acquire("k", 1000));
  EXPECT_FALSE(limiter.acquire("k", 1001));
  EXPECT_EQ(limiter.acquire("k", 1002), 8);   // 2 per 10 s: 1000 leaves the window at 1010
  EXPECT_FALSE(limiter.acquire("k", 1010));   // the first has left the 10 s window
  EXPECT_EQ(limiter.acquire("k", 1021), 79);  // 3 per 100 s: 1000 leaves at 1100
  EXPECT_FALSE(limiter.acquire("other", 1021));
  EXPECT_FALSE(limiter.acquire("k", 1100));
}

TEST(WindowLimiter, RecordAndCountSlide) {
  WindowLimiter limiter({{5, 60}});
  EXPECT_EQ(limiter.record("ip", 0), 1);
  EXPECT_EQ(limiter.record("ip", 30), 2);
  EXPECT_EQ(limiter.count("ip", 59), 2);
  EXPECT_EQ(limiter.count("ip", 60), 1);
  EXPECT_EQ(limiter.count("ip", 90), 0);
}

TEST(WindowLimiter, HoldsUnderConcurrency) {
  WindowLimiter limiter({{25, 60}});
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 100; ++i)
        if (!limiter.acquire("k", 5)) ++allowed;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(allowed.load(), 25);
}

}  // namespace
}  // namespace verifyd
