// RedisCounters against a real redis-server. test/storage/run_redis_tests.sh starts a throwaway
// one and exports VERIFYD_TEST_REDIS_URL; without it these tests skip. The tests that stop,
// pause or restart Redis start their own redis-server (VERIFYD_TEST_REDIS_SERVER, else
// redis-server from PATH) on a free loopback port.
#include "verifyd/storage/redis/redis_counters.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <thread>
#include <vector>

extern char** environ;

namespace verifyd {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr UnixTime kT = 1700000000;

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string uniquePrefix() {
  std::random_device rd;
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return "verifyd-test:" + std::string(info->name()) + ":" + std::to_string(rd()) + ":";
}

int freePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    return 0;
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

// A plain hiredis connection, to look at what the counters left in Redis.
class RawRedis {
 public:
  RawRedis(const std::string& host, int port) {
    ctx_ = redisConnectWithTimeout(host.c_str(), port, timeval{2, 0});
    if (ctx_ && !ctx_->err) redisSetTimeout(ctx_, timeval{2, 0});
  }
  explicit RawRedis(const RedisEndpoint& ep) : RawRedis(ep.host, ep.port) {
    if (!ep.password.empty()) {
      if (ep.user.empty())
        freeReplyObject(cmd({"AUTH", ep.password}));
      else
        freeReplyObject(cmd({"AUTH", ep.user, ep.password}));
    }
    freeReplyObject(cmd({"SELECT", std::to_string(ep.db)}));
  }
  ~RawRedis() {
    if (ctx_) redisFree(ctx_);
  }
  bool ok() const { return ctx_ && !ctx_->err; }
  redisReply* cmd(const std::vector<std::string>& args) {
    if (!ok()) return nullptr;
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    return static_cast<redisReply*>(
        redisCommandArgv(ctx_, static_cast<int>(args.size()), argv.data(), lens.data()));
  }
  long long integer(const std::vector<std::string>& args) {
    redisReply* r = cmd(args);
    long long v = (r && r->type == REDIS_REPLY_INTEGER) ? r->integer : -999;
    if (r) freeReplyObject(r);
    return v;
  }
  std::string text(const std::vector<std::string>& args) {
    redisReply* r = cmd(args);
    std::string v = (r && r->str) ? std::string(r->str, r->len) : "";
    if (r) freeReplyObject(r);
    return v;
  }

 private:
  redisContext* ctx_ = nullptr;
};

// A redis-server of the test's own, which it may stop, pause and restart on the same port.
class OwnRedis {
 public:
  explicit OwnRedis(std::vector<std::string> extra = {}) : extra_(std::move(extra)) {
    char tmpl[] = "/tmp/verifyd-redis-test.XXXXXX";
    if (::mkdtemp(tmpl)) dir_ = tmpl;
    port_ = freePort();
  }
  ~OwnRedis() {
    stop();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  OwnRedis(const OwnRedis&) = delete;
  OwnRedis& operator=(const OwnRedis&) = delete;

  bool start() {
    if (dir_.empty() || port_ == 0) return false;
    std::string bin = env("VERIFYD_TEST_REDIS_SERVER");
    if (bin.empty()) bin = "redis-server";
    std::vector<std::string> args = {
        bin,      "--port",    std::to_string(port_), "--bind", "127.0.0.1",
        "--save", "",          "--appendonly",        "no",     "--dir",
        dir_,     "--logfile", dir_ + "/redis.log"};
    args.insert(args.end(), extra_.begin(), extra_.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    const int rc = posix_spawnp(&pid_, bin.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
      pid_ = 0;
      return false;
    }
    // Ready when it answers (NOAUTH counts: it is up, only locked).
    const auto deadline = steady_clock::now() + std::chrono::seconds(10);
    while (steady_clock::now() < deadline) {
      RawRedis raw("127.0.0.1", port_);
      if (raw.ok()) {
        redisReply* r = raw.cmd({"PING"});
        if (r) {
          freeReplyObject(r);
          return true;
        }
      }
      std::this_thread::sleep_for(milliseconds(20));
    }
    return false;
  }
  void stop() {
    if (pid_ == 0) return;
    ::kill(pid_, SIGCONT);
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = 0;
  }
  void pause() { ::kill(pid_, SIGSTOP); }
  void resume() { ::kill(pid_, SIGCONT); }
  int port() const { return port_; }
  std::string url(const std::string& userinfo = "", int db = 0) const {
    return "redis://" + userinfo + "127.0.0.1:" + std::to_string(port_) + "/" + std::to_string(db);
  }

 private:
  std::vector<std::string> extra_;
  std::string dir_;
  int port_ = 0;
  pid_t pid_ = 0;
};

// A server that answers +PONG to the first command of each connection, then closes it: the
// client's pooled connection is dead, and a long write to it raises SIGPIPE.
class ResettingServer {
 public:
  ResettingServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
        ::listen(fd_, 8) == 0 && ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0)
      port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { loop(); });
  }
  ~ResettingServer() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  ResettingServer(const ResettingServer&) = delete;
  ResettingServer& operator=(const ResettingServer&) = delete;
  int port() const { return port_; }
  int accepted() const { return accepted_.load(); }

 private:
  void loop() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      ++accepted_;
      timeval tv{2, 0};
      ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      char buf[512];
      if (::recv(c, buf, sizeof buf, 0) > 0) ::send(c, "+PONG\r\n", 7, MSG_NOSIGNAL);
      std::this_thread::sleep_for(milliseconds(100));  // the client has read the answer
      ::close(c);
    }
  }

  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

#define REQUIRE_REDIS()                                                                      \
  do {                                                                                       \
    if (env("VERIFYD_TEST_REDIS_URL").empty())                                               \
      GTEST_SKIP() << "VERIFYD_TEST_REDIS_URL is not set (test/storage/run_redis_tests.sh)"; \
  } while (0)

std::unique_ptr<RedisCounters> openOrDie(const std::string& url, const std::string& prefix,
                                         RedisOptions options = {}) {
  auto c = RedisCounters::open(url, prefix, options);
  EXPECT_TRUE(c) << (c ? "" : c.error().message);
  return c ? std::move(*c) : nullptr;
}

class RedisCountersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    REQUIRE_REDIS();
    url_ = env("VERIFYD_TEST_REDIS_URL");
    prefix_ = uniquePrefix();
    counters_ = openOrDie(url_, prefix_);
    ASSERT_TRUE(counters_);
    auto ping = counters_->ping();
    ASSERT_TRUE(ping) << ping.error().message;
  }
  std::optional<std::int64_t> acquire(const std::string& key, const std::vector<Window>& w,
                                      UnixTime now) {
    auto r = counters_->acquire(key, w, now);
    EXPECT_TRUE(r) << (r ? "" : r.error().message);
    return r ? *r : std::optional<std::int64_t>(-1);
  }
  int count(const std::string& key, int seconds, UnixTime now) {
    auto r = counters_->count(key, seconds, now);
    EXPECT_TRUE(r) << (r ? "" : r.error().message);
    return r ? *r : -1;
  }
  RawRedis raw() { return RawRedis(*parseRedisUrl(url_)); }

  std::string url_;
  std::string prefix_;
  std::unique_ptr<RedisCounters> counters_;
};

TEST(RedisUrl, ParsesEveryPart) {
  auto a = parseRedisUrl("redis://127.0.0.1:6380/2");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 6380);
  EXPECT_EQ(a->db, 2);
  EXPECT_EQ(a->password, "");

  auto b = parseRedisUrl("redis://:p%40ss@redis.internal");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->host, "redis.internal");
  EXPECT_EQ(b->port, 6379);
  EXPECT_EQ(b->db, 0);
  EXPECT_EQ(b->user, "");
  EXPECT_EQ(b->password, "p@ss");

  auto c = parseRedisUrl("REDIS://verifyd:secret@[::1]:7000/");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->host, "::1");
  EXPECT_EQ(c->port, 7000);
  EXPECT_EQ(c->user, "verifyd");
  EXPECT_EQ(c->password, "secret");
}

TEST(RedisUrl, RefusesWhatItCannotUse) {
  for (const char* bad : {"", "http://h:1/0", "rediss://h:6379/0", "redis://", "redis://:6379/0",
                          "redis://h:0/0", "redis://h:70000/0", "redis://h:port/0", "redis://h:1/x",
                          "redis://h:1/-1", "redis://h:1/0?timeout=1", "redis://user@h/0",
                          "redis://:p%4@h/0", "redis://[::1/0", "redis://h:/0"}) {
    auto r = parseRedisUrl(bad);
    EXPECT_FALSE(r) << bad;
    if (!r) {
      EXPECT_EQ(r.error().kind, ErrorKind::kInvalidArgument) << bad;
    }
    EXPECT_FALSE(RedisCounters::open(bad)) << bad;
  }
}

TEST_F(RedisCountersTest, AllowsExactlyMaxThenRefusesWithTheWait) {
  const std::vector<Window> w = {{3, 60}};
  EXPECT_FALSE(acquire("k", w, kT));
  EXPECT_FALSE(acquire("k", w, kT + 10));
  EXPECT_FALSE(acquire("k", w, kT + 20));
  EXPECT_EQ(acquire("k", w, kT + 30), 30);  // kT leaves the window at kT + 60
  EXPECT_EQ(acquire("k", w, kT + 59), 1);
  EXPECT_EQ(count("k", 60, kT + 59), 3);  // the refusals counted nothing
  EXPECT_FALSE(acquire("other", w, kT + 30));
}

TEST_F(RedisCountersTest, TheWindowSlides) {
  const std::vector<Window> w = {{2, 10}};
  EXPECT_FALSE(acquire("k", w, kT));
  EXPECT_FALSE(acquire("k", w, kT + 1));
  EXPECT_EQ(acquire("k", w, kT + 2), 8);
  EXPECT_FALSE(acquire("k", w, kT + 10));  // kT has left: t > now - 10 no longer holds
  EXPECT_EQ(acquire("k", w, kT + 10), 1);  // kT + 1 leaves at kT + 11
  EXPECT_FALSE(acquire("k", w, kT + 11));
  EXPECT_EQ(acquire("k", w, kT + 12), 8);  // full again with kT + 10 and kT + 11
  EXPECT_EQ(count("k", 10, kT + 12), 2);
  EXPECT_EQ(count("k", 10, kT + 100), 0);
}

TEST_F(RedisCountersTest, SeveralWindowsAtOnce) {
  const std::vector<Window> w = {{60, 60}, {180, 3600}};
  for (int minute = 0; minute < 3; ++minute) {
    const UnixTime now = kT + 60 * minute;
    for (int i = 0; i < 60; ++i) ASSERT_FALSE(acquire("k", w, now)) << minute << " " << i;
    // The minute is full; after the third, the hour too, and its wait is the longer one.
    EXPECT_EQ(acquire("k", w, now), minute < 2 ? 60 : 3480) << minute;
  }
  // Both full: the longer wait wins (the hour's oldest, kT, leaves at kT + 3600).
  EXPECT_EQ(acquire("k", w, kT + 150), 3450);
  // The minute has room again, the hour not.
  EXPECT_EQ(acquire("k", w, kT + 180), 3420);
  EXPECT_EQ(count("k", 3600, kT + 180), 180);
  // An hour later the first minute's 60 are gone, from the counts and from Redis.
  EXPECT_FALSE(acquire("k", w, kT + 3600));
  EXPECT_EQ(count("k", 3600, kT + 3600), 121);
  EXPECT_EQ(raw().integer({"ZCARD", prefix_ + "k"}), 121);
}

TEST_F(RedisCountersTest, RecordAndCount) {
  auto r1 = counters_->record("ip", 60, kT);
  ASSERT_TRUE(r1);
  EXPECT_EQ(*r1, 1);
  EXPECT_EQ(*counters_->record("ip", 60, kT + 30), 2);
  EXPECT_EQ(*counters_->record("ip", 60, kT + 30), 3);  // same second: still distinct events
  EXPECT_EQ(count("ip", 60, kT + 59), 3);
  EXPECT_EQ(count("ip", 60, kT + 60), 2);
  EXPECT_EQ(count("ip", 10, kT + 35), 2);
  EXPECT_EQ(count("ip", 60, kT + 90), 0);
  EXPECT_EQ(*counters_->record("ip", 60, kT + 90), 1);  // and the old ones were trimmed
  EXPECT_EQ(raw().integer({"ZCARD", prefix_ + "ip"}), 1);
  EXPECT_EQ(count("nobody", 60, kT), 0);
}

TEST_F(RedisCountersTest, KeysArePrefixedAndExpireWithTheLongestWindow) {
  ASSERT_FALSE(acquire("k", {{5, 60}, {10, 600}}, kT));
  ASSERT_TRUE(counters_->record("r", 30, kT));
  RawRedis r = raw();
  EXPECT_EQ(r.integer({"EXISTS", prefix_ + "k"}), 1);
  EXPECT_EQ(r.integer({"EXISTS", "k"}), 0);
  const long long ttl = r.integer({"PTTL", prefix_ + "k"});
  EXPECT_GT(ttl, 590 * 1000);
  EXPECT_LE(ttl, 601 * 1000);
  const long long ttl_r = r.integer({"PTTL", prefix_ + "r"});
  EXPECT_GT(ttl_r, 25 * 1000);
  EXPECT_LE(ttl_r, 31 * 1000);
  // A key that is idle disappears by itself.
  ASSERT_TRUE(counters_->record("short", 1, kT));
  std::this_thread::sleep_for(milliseconds(2300));
  EXPECT_EQ(r.integer({"EXISTS", prefix_ + "short"}), 0);
}

TEST_F(RedisCountersTest, AcquireAllIsAllOrNothing) {
  const std::vector<KeyWindow> both = {{"a", {5, 60}}, {"b", {1, 60}}};
  auto first = counters_->acquireAll(both, kT);
  ASSERT_TRUE(first);
  EXPECT_FALSE(*first);
  EXPECT_EQ(count("a", 60, kT), 1);
  EXPECT_EQ(count("b", 60, kT), 1);

  auto refused = counters_->acquireAll(both, kT + 1);
  ASSERT_TRUE(refused);
  ASSERT_TRUE(*refused);
  EXPECT_EQ((*refused)->first, 1u);
  EXPECT_EQ((*refused)->second, 59);
  EXPECT_EQ(count("a", 60, kT + 1), 1);  // the refused charge left `a` alone

  // The first full key is reported when both are.
  const std::vector<KeyWindow> full = {{"b", {1, 60}}, {"a", {1, 60}}};
  auto both_full = counters_->acquireAll(full, kT + 2);
  ASSERT_TRUE(both_full && *both_full);
  EXPECT_EQ((*both_full)->first, 0u);
  EXPECT_EQ((*both_full)->second, 58);

  // Once `b` has room, both are counted.
  auto later = counters_->acquireAll(both, kT + 60);
  ASSERT_TRUE(later);
  EXPECT_FALSE(*later);
  EXPECT_EQ(count("a", 60, kT + 60), 1);
  EXPECT_EQ(raw().integer({"ZCARD", prefix_ + "a"}), 1);  // kT's event trimmed
  EXPECT_EQ(count("b", 60, kT + 60), 1);

  // A key named twice counts both charges.
  const std::vector<KeyWindow> twice = {{"c", {1, 60}}, {"c", {1, 60}}};
  auto dup = counters_->acquireAll(twice, kT);
  ASSERT_TRUE(dup && *dup);
  EXPECT_EQ((*dup)->first, 1u);
  EXPECT_EQ(count("c", 60, kT), 0);
}

void hammer(std::vector<RedisCounters*> nodes, std::atomic<int>& allowed,
            std::atomic<int>& errors) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      RedisCounters* c = nodes[t % nodes.size()];
      for (int i = 0; i < 50; ++i) {
        auto r = c->acquire("hot", {{100, 60}}, kT + i % 3);
        if (!r)
          ++errors;
        else if (!*r)
          ++allowed;
      }
    });
  for (auto& t : threads) t.join();
}

TEST_F(RedisCountersTest, EightThreadsNeverExceedTheLimit) {
  std::atomic<int> allowed{0}, errors{0};
  hammer({counters_.get()}, allowed, errors);
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(allowed.load(), 100);
  EXPECT_EQ(count("hot", 60, kT + 2), 100);
}

TEST_F(RedisCountersTest, TwoNodesShareOneLimit) {
  auto other = openOrDie(url_, prefix_);
  ASSERT_TRUE(other);
  std::atomic<int> allowed{0}, errors{0};
  hammer({counters_.get(), other.get()}, allowed, errors);
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(allowed.load(), 100);
  EXPECT_EQ(*other->count("hot", 60, kT + 2), 100);
  // A node with another prefix does not see them.
  auto elsewhere = openOrDie(url_, prefix_ + "elsewhere:");
  EXPECT_EQ(*elsewhere->count("hot", 60, kT + 2), 0);
}

// INFO commandstats: how many times the server ran `name`.
long long commandCalls(RawRedis& r, const std::string& name) {
  const std::string info = r.text({"INFO", "commandstats"});
  const std::string tag = "cmdstat_" + name + ":calls=";
  const auto at = info.find(tag);
  if (at == std::string::npos) return 0;
  return std::atoll(info.c_str() + at + tag.size());
}

TEST_F(RedisCountersTest, ScriptsRunByShaAndSurviveAFlushedCache) {
  RawRedis r = raw();
  ASSERT_EQ(r.text({"SCRIPT", "FLUSH"}), "OK");
  const long long evals = commandCalls(r, "eval");
  const long long evalshas = commandCalls(r, "evalsha");
  for (int i = 0; i < 10; ++i) ASSERT_FALSE(acquire("k", {{100, 60}}, kT));
  EXPECT_EQ(count("k", 60, kT), 10);
  // NOSCRIPT once per script, EVAL loads it, EVALSHA finds it from then on: the locally
  // computed SHA-1 is the server's.
  EXPECT_EQ(commandCalls(r, "eval") - evals, 2);
  EXPECT_EQ(commandCalls(r, "evalsha") - evalshas, 11);
}

TEST(RedisCountersDown, AClosedPortIsUnavailableAtOnce) {
  REQUIRE_REDIS();
  const int port = freePort();
  ASSERT_NE(port, 0);
  auto c = openOrDie("redis://127.0.0.1:" + std::to_string(port) + "/0", uniquePrefix());
  ASSERT_TRUE(c);
  const auto start = steady_clock::now();
  auto a = c->acquire("k", {{1, 60}}, kT);
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().kind, ErrorKind::kUnavailable);
  auto rec = c->record("k", 60, kT);
  ASSERT_FALSE(rec);
  EXPECT_EQ(rec.error().kind, ErrorKind::kUnavailable);
  auto all = c->acquireAll({{"k", {1, 60}}}, kT);
  ASSERT_FALSE(all);
  EXPECT_EQ(all.error().kind, ErrorKind::kUnavailable);
  EXPECT_FALSE(c->ping());
  EXPECT_LT(steady_clock::now() - start, std::chrono::seconds(2));
}

TEST(RedisCountersDown, ARestartedRedisIsPickedUpByTheSameObject) {
  REQUIRE_REDIS();
  OwnRedis redis;
  ASSERT_TRUE(redis.start());
  auto c = openOrDie(redis.url(), uniquePrefix());
  ASSERT_TRUE(c);
  // Several pooled connections, all of which the stop makes stale.
  std::atomic<int> allowed{0}, errors{0};
  hammer({c.get()}, allowed, errors);
  ASSERT_EQ(errors.load(), 0);

  redis.stop();
  auto down = c->acquire("k", {{5, 60}}, kT);
  ASSERT_FALSE(down);
  EXPECT_EQ(down.error().kind, ErrorKind::kUnavailable);
  auto count_down = c->count("k", 60, kT);
  ASSERT_FALSE(count_down);
  EXPECT_EQ(count_down.error().kind, ErrorKind::kUnavailable);

  ASSERT_TRUE(redis.start());
  auto up = c->acquire("k", {{5, 60}}, kT);
  ASSERT_TRUE(up) << up.error().message;
  EXPECT_FALSE(*up);
  EXPECT_EQ(*c->count("k", 60, kT), 1);

  // Restarted between two calls, with only stale connections pooled: the caller sees no error.
  allowed = 0;
  hammer({c.get()}, allowed, errors);
  ASSERT_EQ(errors.load(), 0);
  redis.stop();
  ASSERT_TRUE(redis.start());
  for (int i = 0; i < 10; ++i) {
    auto r = c->record("r", 60, kT);
    ASSERT_TRUE(r) << i << ": " << r.error().message;
    EXPECT_EQ(*r, i + 1);
  }
}

TEST(RedisCountersDown, AConnectionClosedWhileIdleNeitherKillsNorFails) {
  REQUIRE_REDIS();
  ResettingServer server;
  ASSERT_NE(server.port(), 0);
  auto c = openOrDie("redis://127.0.0.1:" + std::to_string(server.port()) + "/0", uniquePrefix());
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->ping());
  for (int i = 0; i < 3; ++i) {
    std::this_thread::sleep_for(milliseconds(300));  // the pooled connection has been closed
    auto p = c->ping();                              // fails on it, then a fresh connection answers
    ASSERT_TRUE(p) << i << ": " << p.error().message;
  }
  EXPECT_EQ(server.accepted(), 4);
  // A command too long for one write: the peer resets the connection after the first part,
  // and the next write raises SIGPIPE, which must not end the process.
  std::this_thread::sleep_for(milliseconds(300));
  auto big = c->acquire(std::string(32 << 20, 'k'), {{1, 60}}, kT);
  EXPECT_FALSE(big);  // the server answers +PONG, or nothing
}

TEST(RedisCountersDown, AHungRedisTimesOutAndRecovers) {
  REQUIRE_REDIS();
  OwnRedis redis;
  ASSERT_TRUE(redis.start());
  RedisOptions options;
  options.connect_timeout = milliseconds(300);
  options.command_timeout = milliseconds(300);
  auto c = openOrDie(redis.url(), uniquePrefix(), options);
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->ping());

  redis.pause();
  for (int i = 0; i < 2; ++i) {  // on the pooled connection, then on a new one
    const auto start = steady_clock::now();
    auto r = c->acquire("k", {{5, 60}}, kT);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind, ErrorKind::kUnavailable);
    EXPECT_LT(steady_clock::now() - start, std::chrono::seconds(2));
  }
  redis.resume();
  // Refused calls counted nothing that can be seen, except what a timed-out script did after
  // the answer was given up on: at most the two events above.
  auto r = c->acquire("k", {{5, 60}}, kT);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_FALSE(*r);
  auto n = c->count("k", 60, kT);
  ASSERT_TRUE(n);
  EXPECT_GE(*n, 1);
  EXPECT_LE(*n, 3);
}

TEST(RedisCountersDown, PasswordAndDatabaseFromTheUrl) {
  REQUIRE_REDIS();
  OwnRedis redis({"--requirepass", "s3cr/et"});
  ASSERT_TRUE(redis.start());
  const std::string prefix = uniquePrefix();

  auto no_password = openOrDie(redis.url(), prefix);
  auto p = no_password->ping();
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().kind, ErrorKind::kUnavailable);
  auto wrong = openOrDie(redis.url(":nope@"), prefix);
  EXPECT_FALSE(wrong->acquire("k", {{1, 60}}, kT));

  auto right = openOrDie(redis.url(":s3cr%2Fet@", 3), prefix);
  ASSERT_TRUE(right->ping());
  auto a = right->acquire("k", {{1, 60}}, kT);
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_FALSE(*a);
  RawRedis raw(*parseRedisUrl(redis.url(":s3cr%2Fet@", 3)));
  EXPECT_EQ(raw.integer({"EXISTS", prefix + "k"}), 1);
  RawRedis db0(*parseRedisUrl(redis.url(":s3cr%2Fet@", 0)));
  EXPECT_EQ(db0.integer({"EXISTS", prefix + "k"}), 0);
}

}  // namespace
}  // namespace verifyd
