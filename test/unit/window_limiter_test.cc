#include "verifyd/core/window_limiter.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace verifyd {
namespace {

std::optional<std::int64_t> acquire(MemoryCounters& c, const std::string& key,
                                    const std::vector<Window>& w, UnixTime now) {
  return *c.acquire(key, w, now);
}

TEST(MemoryCounters, EveryWindowHoldsAndReportsTheWait) {
  MemoryCounters c;
  const std::vector<Window> w = {{2, 10}, {3, 100}};
  EXPECT_FALSE(acquire(c, "k", w, 1000));
  EXPECT_FALSE(acquire(c, "k", w, 1001));
  EXPECT_EQ(acquire(c, "k", w, 1002), 8);   // 2 per 10 s: 1000 leaves the window at 1010
  EXPECT_FALSE(acquire(c, "k", w, 1010));   // the first has left the 10 s window
  EXPECT_EQ(acquire(c, "k", w, 1021), 79);  // 3 per 100 s: 1000 leaves at 1100
  EXPECT_FALSE(acquire(c, "other", w, 1021));
  EXPECT_FALSE(acquire(c, "k", w, 1100));
}

TEST(MemoryCounters, RecordAndCountSlide) {
  MemoryCounters c;
  EXPECT_EQ(*c.record("ip", 60, 0), 1);
  EXPECT_EQ(*c.record("ip", 60, 30), 2);
  EXPECT_EQ(*c.count("ip", 60, 59), 2);
  EXPECT_EQ(*c.count("ip", 60, 60), 1);
  EXPECT_EQ(*c.count("ip", 60, 90), 0);
}

TEST(MemoryCounters, AcquireAllCountsNothingWhenOneKeyIsFull) {
  MemoryCounters c;
  const std::vector<KeyWindow> both = {{"a", {5, 60}}, {"b", {1, 60}}};
  EXPECT_FALSE(*c.acquireAll(both, 100));
  auto refused = *c.acquireAll(both, 101);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->first, 1u);
  EXPECT_EQ(refused->second, 59);
  EXPECT_EQ(*c.count("a", 60, 101), 1);  // the refused charge left `a` alone
}

TEST(MemoryCounters, HoldsUnderConcurrency) {
  MemoryCounters c;
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 100; ++i)
        if (!acquire(c, "k", {{25, 60}}, 5)) ++allowed;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(allowed.load(), 25);
}

}  // namespace
}  // namespace verifyd
