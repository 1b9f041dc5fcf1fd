#include "verifyd/storage/redis/redis_counters.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>
#include <sys/time.h>

#include <algorithm>
#include <bit>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <ctime>
#include <limits>
#include <random>

namespace verifyd {
namespace {

// KEYS[1]: the key. ARGV: now, a unique member, then max and seconds of each window.
// Returns 0 when the event was counted, else the seconds until it would be (at least 1).
constexpr std::string_view kAcquireScript = R"lua(
local key = KEYS[1]
local now = tonumber(ARGV[1])
local longest = 0
for i = 3, #ARGV, 2 do
  longest = math.max(longest, tonumber(ARGV[i + 1]))
end
redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%d', now - longest))
local wait = 0
for i = 3, #ARGV, 2 do
  local max, seconds = tonumber(ARGV[i]), tonumber(ARGV[i + 1])
  local low = string.format('(%d', now - seconds)
  local n = redis.call('ZCOUNT', key, low, '+inf')
  if n >= max then
    local until_free = seconds
    if max > 0 then
      -- It frees up when the event `max` places from the newest leaves the window.
      local e = redis.call('ZRANGEBYSCORE', key, low, '+inf', 'WITHSCORES', 'LIMIT', n - max, 1)
      until_free = tonumber(e[2]) + seconds - now
    end
    wait = math.max(wait, until_free, 1)
  end
end
if wait > 0 then return wait end
redis.call('ZADD', key, ARGV[1], ARGV[2])
local ttl = (longest + 1) * 1000
if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
return 0
)lua";

// KEYS[1]: the key. ARGV: now, a unique member, seconds. Counts the event regardless and
// returns the events within the window.
constexpr std::string_view kRecordScript = R"lua(
local key = KEYS[1]
local now, seconds = tonumber(ARGV[1]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%d', now - seconds))
redis.call('ZADD', key, ARGV[1], ARGV[2])
local ttl = (seconds + 1) * 1000
if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
return redis.call('ZCOUNT', key, string.format('(%d', now - seconds), '+inf')
)lua";

// KEYS[1]: the key. ARGV: now, seconds. Read-only.
constexpr std::string_view kCountScript = R"lua(
local now, seconds = tonumber(ARGV[1]), tonumber(ARGV[2])
return redis.call('ZCOUNT', KEYS[1], string.format('(%d', now - seconds), '+inf')
)lua";

// KEYS: one per item. ARGV: now, a unique member, then max and seconds of each item's window.
// Returns {-1, 0} when every key counted the event, else {the 0-based index of the first full
// key, the seconds until it has room}, having counted nothing.
constexpr std::string_view kAcquireAllScript = R"lua(
local now = tonumber(ARGV[1])
local added = {}  -- events this call adds to a key, for a key named twice
for i = 1, #KEYS do
  local key = KEYS[i]
  local max, seconds = tonumber(ARGV[2 * i + 1]), tonumber(ARGV[2 * i + 2])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%d', now - seconds))
  local low = string.format('(%d', now - seconds)
  local n = redis.call('ZCOUNT', key, low, '+inf')
  local pending = added[key] or 0
  if n + pending >= max then
    local wait = seconds
    if max > 0 and n + pending - max < n then
      local e = redis.call('ZRANGEBYSCORE', key, low, '+inf', 'WITHSCORES', 'LIMIT',
                           n + pending - max, 1)
      wait = tonumber(e[2]) + seconds - now
    end
    return {i - 1, math.max(wait, 1)}
  end
  added[key] = pending + 1
end
for i = 1, #KEYS do
  local key = KEYS[i]
  redis.call('ZADD', key, ARGV[1], ARGV[2] .. ':' .. i)
  local ttl = (tonumber(ARGV[2 * i + 2]) + 1) * 1000
  if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
end
return {-1, 0}
)lua";

// SHA-1 (FIPS 180-4), hex: the name Redis gives a script. Only for the scripts above.
std::string sha1Hex(std::string_view data) {
  std::uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
  std::string msg(data);
  const std::uint64_t bits = static_cast<std::uint64_t>(data.size()) * 8;
  msg.push_back(static_cast<char>(0x80));
  while (msg.size() % 64 != 56) msg.push_back('\0');
  for (int i = 7; i >= 0; --i) msg.push_back(static_cast<char>((bits >> (i * 8)) & 0xff));
  for (std::size_t off = 0; off < msg.size(); off += 64) {
    std::uint32_t w[80];
    for (int i = 0; i < 16; ++i) {
      w[i] = 0;
      for (int j = 0; j < 4; ++j)
        w[i] = (w[i] << 8) | static_cast<unsigned char>(msg[off + 4 * i + j]);
    }
    for (int i = 16; i < 80; ++i) w[i] = std::rotl(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    std::uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; ++i) {
      std::uint32_t f, k;
      if (i < 20) {
        f = (b & c) | (~b & d);
        k = 0x5A827999;
      } else if (i < 40) {
        f = b ^ c ^ d;
        k = 0x6ED9EBA1;
      } else if (i < 60) {
        f = (b & c) | (b & d) | (c & d);
        k = 0x8F1BBCDC;
      } else {
        f = b ^ c ^ d;
        k = 0xCA62C1D6;
      }
      const std::uint32_t t = std::rotl(a, 5) + f + e + k + w[i];
      e = d;
      d = c;
      c = std::rotl(b, 30);
      b = a;
      a = t;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (std::uint32_t v : h)
    for (int shift = 28; shift >= 0; shift -= 4) out.push_back(kHex[(v >> shift) & 0xf]);
  return out;
}

Error unavailable(std::string_view what) {
  return Error::unavailable("rate counter store (Redis) unavailable: " + std::string(what));
}

Error badUrl(std::string detail) { return Error::invalid("url", std::move(detail)); }

timeval toTimeval(std::chrono::milliseconds ms) {
  const auto count = std::max<std::int64_t>(ms.count(), 1);
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(count / 1000);
  tv.tv_usec = static_cast<suseconds_t>((count % 1000) * 1000);
  return tv;
}

// hiredis writes with write(2): a connection the server has closed raises SIGPIPE, which would
// end the process. Blocks it in this thread while a command runs and consumes the one the
// command raised, leaving a SIGPIPE that was already pending alone.
class SigpipeBlock {
 public:
  SigpipeBlock() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    sigset_t pending;
    sigemptyset(&pending);
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
  }
  ~SigpipeBlock() {
    if (!was_pending_) {
      sigset_t pending;
      sigemptyset(&pending);
      sigpending(&pending);
      if (sigismember(&pending, SIGPIPE) == 1) {
        const timespec zero{};
        while (sigtimedwait(&pipe_, nullptr, &zero) == -1 && errno == EINTR) {
        }
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeBlock(const SigpipeBlock&) = delete;
  SigpipeBlock& operator=(const SigpipeBlock&) = delete;

 private:
  sigset_t pipe_;
  sigset_t old_;
  bool was_pending_ = false;
};

redisReply* command(redisContext* c, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<std::size_t> lens;
  argv.reserve(args.size());
  lens.reserve(args.size());
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  return static_cast<redisReply*>(
      redisCommandArgv(c, static_cast<int>(args.size()), argv.data(), lens.data()));
}

std::string replyText(const redisReply* r) { return std::string(r->str, r->len); }

bool parseInt(std::string_view s, int min, int max, int& out) {
  if (s.empty()) return false;
  int v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v < min || v > max) return false;
  out = v;
  return true;
}

bool percentDecode(std::string_view s, std::string& out) {
  out.clear();
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) return false;
    unsigned v = 0;
    auto [p, ec] = std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16);
    if (ec != std::errc() || p != s.data() + i + 3) return false;
    out.push_back(static_cast<char>(v));
    i += 2;
  }
  return true;
}

Result<std::int64_t> integerReply(const redisReply* r) {
  if (r->type != REDIS_REPLY_INTEGER) return fail(Error::internal("unexpected reply from Redis"));
  return r->integer;
}

}  // namespace

Result<RedisEndpoint> parseRedisUrl(const std::string& url) {
  constexpr std::string_view kScheme = "redis://";
  if (url.size() < kScheme.size() ||
      !std::equal(kScheme.begin(), kScheme.end(), url.begin(),
                  [](char a, char b) { return a == std::tolower(static_cast<unsigned char>(b)); }))
    return fail(badUrl("expected redis://[[user]:password@]host[:port][/db] (no TLS)"));
  std::string_view rest(url);
  rest.remove_prefix(kScheme.size());
  if (rest.find_first_of("?#") != std::string_view::npos)
    return fail(badUrl("a Redis URL takes no query or fragment"));
  RedisEndpoint ep;
  const auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) {
    std::string_view db = rest.substr(slash + 1);
    if (!db.empty() && !parseInt(db, 0, std::numeric_limits<int>::max(), ep.db))
      return fail(badUrl("the path is the database number"));
  }
  if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
    std::string_view userinfo = authority.substr(0, at);
    authority.remove_prefix(at + 1);
    const auto colon = userinfo.find(':');
    if (colon == std::string_view::npos)
      return fail(badUrl("credentials are written :password@ or user:password@"));
    if (!percentDecode(userinfo.substr(0, colon), ep.user) ||
        !percentDecode(userinfo.substr(colon + 1), ep.password))
      return fail(badUrl("bad percent-encoding in the credentials"));
    if (ep.password.empty()) return fail(badUrl("empty password"));
  }
  std::string_view port;
  if (authority.starts_with('[')) {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return fail(badUrl("unterminated IPv6 address"));
    ep.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return fail(badUrl("unexpected text after the IPv6 address"));
      port = after.substr(1);
      if (port.empty()) return fail(badUrl("empty port"));
    }
  } else if (const auto colon = authority.rfind(':'); colon != std::string_view::npos) {
    ep.host = std::string(authority.substr(0, colon));
    port = authority.substr(colon + 1);
    if (port.empty()) return fail(badUrl("empty port"));
  } else {
    ep.host = std::string(authority);
  }
  if (ep.host.empty()) return fail(badUrl("no host"));
  if (!port.empty() && !parseInt(port, 1, 65535, ep.port)) return fail(badUrl("bad port"));
  return ep;
}

void RedisCounters::ContextDeleter::operator()(redisContext* c) const { redisFree(c); }
void RedisCounters::ReplyDeleter::operator()(redisReply* r) const { freeReplyObject(r); }

Result<std::unique_ptr<RedisCounters>> RedisCounters::open(const std::string& url,
                                                           std::string key_prefix,
                                                           RedisOptions options) {
  auto endpoint = parseRedisUrl(url);
  if (!endpoint) return fail(endpoint.error());
  return std::unique_ptr<RedisCounters>(
      new RedisCounters(std::move(*endpoint), std::move(key_prefix), options));
}

namespace {
std::string randomInstance() {
  std::random_device rd;
  const std::uint64_t v = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (int shift = 60; shift >= 0; shift -= 4) out.push_back(kHex[(v >> shift) & 0xf]);
  return out;
}
}  // namespace

RedisCounters::RedisCounters(RedisEndpoint endpoint, std::string key_prefix, RedisOptions options)
    : endpoint_(std::move(endpoint)),
      prefix_(std::move(key_prefix)),
      options_(options),
      acquire_{kAcquireScript, sha1Hex(kAcquireScript)},
      record_{kRecordScript, sha1Hex(kRecordScript)},
      count_{kCountScript, sha1Hex(kCountScript)},
      acquire_all_{kAcquireAllScript, sha1Hex(kAcquireAllScript)},
      instance_(randomInstance()) {}

RedisCounters::~RedisCounters() = default;

Result<RedisCounters::ContextPtr> RedisCounters::connect() const {
  ContextPtr c(redisConnectWithTimeout(endpoint_.host.c_str(), endpoint_.port,
                                       toTimeval(options_.connect_timeout)));
  if (!c) return fail(unavailable("cannot allocate a connection"));
  if (c->err) return fail(unavailable(c->errstr));
  if (redisSetTimeout(c.get(), toTimeval(options_.command_timeout)) != REDIS_OK)
    return fail(unavailable(c->errstr));
  redisEnableKeepAlive(c.get());  // best effort: notices a peer gone behind a silent network
  auto setup = [&](std::vector<std::string> args) -> Status {
    ReplyPtr r(command(c.get(), args));
    if (!r) return fail(unavailable(c->errstr));
    if (r->type == REDIS_REPLY_ERROR) return fail(unavailable(args[0] + ": " + replyText(r.get())));
    return {};
  };
  if (!endpoint_.password.empty()) {
    std::vector<std::string> auth = {"AUTH"};
    if (!endpoint_.user.empty()) auth.push_back(endpoint_.user);
    auth.push_back(endpoint_.password);
    if (auto s = setup(std::move(auth)); !s) return fail(s.error());
  }
  if (endpoint_.db != 0) {
    if (auto s = setup({"SELECT", std::to_string(endpoint_.db)}); !s) return fail(s.error());
  }
  return c;
}

Result<RedisCounters::Lease> RedisCounters::take() {
  std::uint64_t generation = 0;
  {
    std::lock_guard lock(mu_);
    if (!idle_.empty()) {
      Lease lease{std::move(idle_.back()), generation_, true};
      idle_.pop_back();
      return lease;
    }
    generation = generation_;
  }
  auto c = connect();
  if (!c) return fail(c.error());
  return Lease{std::move(*c), generation, false};
}

void RedisCounters::give(Lease lease) {
  std::lock_guard lock(mu_);
  if (lease.generation == generation_ && idle_.size() < options_.max_idle_connections)
    idle_.push_back(std::move(lease.ctx));
  // else the lease's connection closes as it goes out of scope
}

void RedisCounters::dropIdle() {
  std::vector<ContextPtr> stale;
  {
    std::lock_guard lock(mu_);
    ++generation_;
    stale.swap(idle_);
  }
}

Result<RedisCounters::ReplyPtr> RedisCounters::run(std::vector<std::string> args,
                                                   const Script* script) {
  SigpipeBlock no_sigpipe;
  for (int attempt = 0;; ++attempt) {
    auto lease = take();
    if (!lease) return fail(lease.error());
    redisContext* c = lease->ctx.get();
    ReplyPtr r(command(c, args));
    int io_errno = errno;
    if (r && script && r->type == REDIS_REPLY_ERROR && replyText(r.get()).starts_with("NOSCRIPT")) {
      // The server restarted or flushed its scripts: EVAL sends the text (and caches it again).
      std::vector<std::string> eval = args;
      eval[0] = "EVAL";
      eval[1] = std::string(script->source);
      r.reset(command(c, eval));
      io_errno = errno;
    }
    if (!r) {
      const int err = c->err;
      std::string what = c->errstr;
      dropIdle();
      // A pooled connection the server closed while it sat idle (a restart, the server's idle
      // timeout) fails before the command ran: one more try on a fresh connection. Not after a
      // timeout, when the command may still run.
      const bool stale =
          lease->reused && (err == REDIS_ERR_EOF ||
                            (err == REDIS_ERR_IO && (io_errno == ECONNRESET || io_errno == EPIPE)));
      if (stale && attempt == 0) continue;
      return fail(unavailable(what));
    }
    if (r->type == REDIS_REPLY_ERROR) {
      // LOADING, READONLY after a failover, OOM, BUSY…: the connection is closed (lease dropped)
      // and the next call opens a fresh one.
      return fail(unavailable(replyText(r.get())));
    }
    give(std::move(*lease));
    return r;
  }
}

Result<RedisCounters::ReplyPtr> RedisCounters::eval(const Script& script,
                                                    const std::vector<std::string>& keys,
                                                    std::vector<std::string> args) {
  std::vector<std::string> cmd;
  cmd.reserve(3 + keys.size() + args.size());
  cmd.push_back("EVALSHA");
  cmd.push_back(script.sha);
  cmd.push_back(std::to_string(keys.size()));
  for (const auto& k : keys) cmd.push_back(prefix_ + k);
  for (auto& a : args) cmd.push_back(std::move(a));
  return run(std::move(cmd), &script);
}

std::string RedisCounters::member(UnixTime now) {
  return std::to_string(now) + ":" + instance_ + ":" + std::to_string(++sequence_);
}

Result<std::optional<std::int64_t>> RedisCounters::acquire(const std::string& key,
                                                           const std::vector<Window>& windows,
                                                           UnixTime now) {
  if (windows.empty()) return std::nullopt;  // nothing limits it, and no window would see it
  std::vector<std::string> args = {std::to_string(now), member(now)};
  for (const auto& w : windows) {
    if (w.seconds <= 0) return fail(Error::internal("a counter window needs positive seconds"));
    args.push_back(std::to_string(w.max));
    args.push_back(std::to_string(w.seconds));
  }
  auto r = eval(acquire_, {key}, std::move(args));
  if (!r) return fail(r.error());
  auto wait = integerReply(r->get());
  if (!wait) return fail(wait.error());
  if (*wait == 0) return std::nullopt;
  return *wait;
}

Result<int> RedisCounters::record(const std::string& key, int seconds, UnixTime now) {
  if (seconds <= 0) return fail(Error::internal("a counter window needs positive seconds"));
  auto r = eval(record_, {key}, {std::to_string(now), member(now), std::to_string(seconds)});
  if (!r) return fail(r.error());
  auto n = integerReply(r->get());
  if (!n) return fail(n.error());
  return static_cast<int>(*n);
}

Result<int> RedisCounters::count(const std::string& key, int seconds, UnixTime now) {
  if (seconds <= 0) return fail(Error::internal("a counter window needs positive seconds"));
  auto r = eval(count_, {key}, {std::to_string(now), std::to_string(seconds)});
  if (!r) return fail(r.error());
  auto n = integerReply(r->get());
  if (!n) return fail(n.error());
  return static_cast<int>(*n);
}

Result<std::optional<std::pair<std::size_t, std::int64_t>>> RedisCounters::acquireAll(
    const std::vector<KeyWindow>& items, UnixTime now) {
  if (items.empty()) return std::nullopt;
  std::vector<std::string> keys;
  std::vector<std::string> args = {std::to_string(now), member(now)};
  keys.reserve(items.size());
  for (const auto& item : items) {
    if (item.window.seconds <= 0)
      return fail(Error::internal("a counter window needs positive seconds"));
    keys.push_back(item.key);
    args.push_back(std::to_string(item.window.max));
    args.push_back(std::to_string(item.window.seconds));
  }
  auto r = eval(acquire_all_, keys, std::move(args));
  if (!r) return fail(r.error());
  const redisReply* reply = r->get();
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
      reply->element[0]->type != REDIS_REPLY_INTEGER ||
      reply->element[1]->type != REDIS_REPLY_INTEGER)
    return fail(Error::internal("unexpected reply from Redis"));
  const long long index = reply->element[0]->integer;
  if (index < 0) return std::nullopt;
  if (static_cast<std::size_t>(index) >= items.size())
    return fail(Error::internal("unexpected reply from Redis"));
  return std::make_pair(static_cast<std::size_t>(index),
                        static_cast<std::int64_t>(reply->element[1]->integer));
}

Status RedisCounters::ping() {
  auto r = run({"PING"}, nullptr);
  if (!r) return fail(r.error());
  return {};
}

}  // namespace verifyd
