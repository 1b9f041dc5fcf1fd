#pragma once
// Sliding-window counters kept in Redis, shared by every verifyd node that points at the same
// server. Each key is a sorted set of events (score: the event's time in seconds, member: unique
// per event) under `key_prefix`; every Counters call is one Lua script (EVALSHA, EVAL when the
// server has lost its script cache), so a check-and-count is atomic across nodes. Time comes from
// the caller's `now`, never from Redis, so a node's clock (or a test's fake clock) decides.
//
// Each call trims the events older than the windows it is given and keeps the key alive for its
// longest window (plus a second for clock skew), so idle keys disappear by themselves. A key is
// meant to be used with one set of windows: a call with a shorter window trims what a longer one
// would still count.
//
// Thread-safe: calls borrow a connection from a small pool (one is opened when none is idle).
// Connecting and every command have timeouts; any failure answers Error::unavailable and closes
// the connection (after an I/O error, every idle one too); the next call opens a fresh one, so a
// restarted Redis is picked up without re-creating this object. A pooled connection the server
// closed while idle is retried once on a fresh one (never after a timeout, when the script may
// still run). SIGPIPE from a dead socket is blocked and consumed in the calling thread. Not for
// Redis Cluster (acquireAll takes several keys in one script).
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "verifyd/core/ports/counters.h"

struct redisContext;
struct redisReply;

namespace verifyd {

// Where a Redis server is: redis://[[user]:password@]host[:port][/db]. The user and password
// may be percent-encoded; an IPv6 host is written in brackets. Port 6379 and db 0 by default.
struct RedisEndpoint {
  std::string host;
  int port = 6379;
  std::string user;      // empty: AUTH with the password alone (or no AUTH)
  std::string password;  // empty: no AUTH
  int db = 0;
};

// kInvalidArgument (param "url") for anything but the form above; rediss:// (TLS) is refused.
Result<RedisEndpoint> parseRedisUrl(const std::string& url);

struct RedisOptions {
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds command_timeout{2000};  // each read or write of a command
  std::size_t max_idle_connections = 8;             // more are opened when needed, then closed
};

class RedisCounters final : public Counters {
 public:
  // Parses the URL; does not connect (the first call does, and so does ping()), so a node can
  // start while Redis is down. Call ping() to fail fast on a wrong address or password.
  static Result<std::unique_ptr<RedisCounters>> open(const std::string& url,
                                                     std::string key_prefix = "verifyd:",
                                                     RedisOptions options = {});
  ~RedisCounters() override;
  RedisCounters(const RedisCounters&) = delete;
  RedisCounters& operator=(const RedisCounters&) = delete;

  Result<std::optional<std::int64_t>> acquire(const std::string& key,
                                              const std::vector<Window>& windows,
                                              UnixTime now) override;
  Result<int> record(const std::string& key, int seconds, UnixTime now) override;
  Result<int> count(const std::string& key, int seconds, UnixTime now) override;
  Result<std::optional<std::pair<std::size_t, std::int64_t>>> acquireAll(
      const std::vector<KeyWindow>& items, UnixTime now) override;

  // PING on a pooled (or new) connection: Error::unavailable when Redis cannot be reached or
  // refuses the credentials or the db.
  Status ping();

  const std::string& keyPrefix() const { return prefix_; }

 private:
  struct ContextDeleter {
    void operator()(redisContext* c) const;
  };
  using ContextPtr = std::unique_ptr<redisContext, ContextDeleter>;
  struct Lease {
    ContextPtr ctx;
    std::uint64_t generation = 0;
    bool reused = false;  // came from the pool: it may have gone stale while idle
  };
  struct ReplyDeleter {
    void operator()(redisReply* r) const;
  };
  using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;
  struct Script {
    std::string_view source;
    std::string sha;  // hex SHA-1 of source, the name EVALSHA knows it by
  };

  RedisCounters(RedisEndpoint endpoint, std::string key_prefix, RedisOptions options);

  Result<ContextPtr> connect() const;
  Result<Lease> take();
  void give(Lease lease);
  void dropIdle();  // after a connection failure: the idle ones are likely broken as well
  // Runs `args` (a command) on a pooled connection; `script` names a script to send with EVAL
  // when the server answers NOSCRIPT to the EVALSHA in args.
  Result<ReplyPtr> run(std::vector<std::string> args, const Script* script);
  Result<ReplyPtr> eval(const Script& script, const std::vector<std::string>& keys,
                        std::vector<std::string> args);
  std::string member(UnixTime now);  // unique across calls and nodes

  const RedisEndpoint endpoint_;
  const std::string prefix_;
  const RedisOptions options_;
  const Script acquire_, record_, count_, acquire_all_;
  const std::string instance_;  // random, tells this object's events from other nodes'

  std::mutex mu_;
  std::vector<ContextPtr> idle_;
  std::uint64_t generation_ = 0;  // bumped by dropIdle(): older leases are not pooled again
  std::atomic<std::uint64_t> sequence_{0};
};

}  // namespace verifyd
