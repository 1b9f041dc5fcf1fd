#pragma once
// Test doubles for the injected sources of nondeterminism.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <string>

#include "verifyd/common/clock.h"
#include "verifyd/common/random.h"

namespace verifyd::testing {

// A clock that moves only when told to.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(UnixTime start = 1700000000) : now_(start) {}
  UnixTime now() const override { return now_.load(); }
  void advance(UnixTime seconds) { now_ += seconds; }

 private:
  std::atomic<UnixTime> now_;
};

// Reproducible "random" bytes: a counter run through a mixing function (splitmix64). Never
// use outside tests.
class FakeRandom final : public Random {
 public:
  explicit FakeRandom(std::uint64_t seed = 42) : state_(seed) {}
  void fill(std::uint8_t* out, std::size_t n) override {
    for (std::size_t i = 0; i < n; i += 8) {
      std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      z ^= z >> 31;
      std::memcpy(out + i, &z, std::min<std::size_t>(8, n - i));
    }
  }

 private:
  std::atomic<std::uint64_t> state_;
};

// A fresh directory for the running test, removed with everything in it at destruction.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ =
        std::filesystem::temp_directory_path() / ("verifyd-" + std::to_string(::getpid()) + "-" +
                                                  info->test_suite_name() + "." + info->name());
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

}  // namespace verifyd::testing
