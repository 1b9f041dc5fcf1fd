#include "verifyd/server/app.h"

#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <thread>

#include "verifyd/api/router.h"
#include "verifyd/common/clock.h"
#include "verifyd/common/time_format.h"
#include "verifyd/core/accounts.h"
#include "verifyd/core/factors.h"
#include "verifyd/core/protection.h"
#include "verifyd/core/rate_limits.h"
#include "verifyd/core/service_registry.h"
#include "verifyd/core/verifier.h"
#include "verifyd/crypto/factor_crypto.h"
#include "verifyd/crypto/openssl.h"
#include "verifyd/delivery/delivery_service.h"
#include "verifyd/http/server.h"
#include "verifyd/phone/libphonenumber_numbers.h"
#include "verifyd/storage/postgres/pg_store.h"
#include "verifyd/storage/redis/redis_counters.h"
#include "verifyd/storage/sqlite/sqlite_store.h"

namespace verifyd {

namespace {

int startupError(const std::string& what) {
  std::fprintf(stderr, "verifyd: %s\n", what.c_str());
  return 1;
}

std::string envOr(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

struct Runtime {
  OsRandom random;
  SystemClock clock;
  std::unique_ptr<OpenSslKeyring> keyring;
  std::unique_ptr<Store> store;
  std::unique_ptr<Counters> counters;  // shared (Redis) when configured, else null
};

constexpr const char* kKeyCheck = "server_key_check";

Result<Runtime*> openRuntime(const ServeConfig& cfg, Runtime& rt) {
  const std::string& data_dir = cfg.data_dir;
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) return fail(Error::internal("cannot create " + data_dir + ": " + ec.message()));
  ::chmod(data_dir.c_str(), 0700);
  const std::string key_file = cfg.secret_file.empty() ? data_dir + "/server.key" : cfg.secret_file;
  auto secret = loadOrCreateSecret(key_file, rt.random);
  if (!secret) return fail(secret.error());
  rt.keyring = std::make_unique<OpenSslKeyring>(std::move(*secret));
  if (cfg.store == "postgres") {
    if (cfg.postgres_url.empty())
      return fail(Error::invalid("--postgres-url", "required with --store postgres"));
    auto store = PgStore::open(cfg.postgres_url);
    if (!store) return fail(store.error());
    rt.store = std::move(*store);
  } else {
    auto store = SqliteStore::open(data_dir + "/verifyd.db");
    if (!store) return fail(store.error());
    rt.store = std::move(*store);
  }
  // Every node of a shared database must hold the same secret, or codes sent through one node
  // would not check on another: the database remembers a value derived from it.
  std::string check;
  for (unsigned char c : rt.keyring->mac("key-check", "verifyd")) {
    static constexpr char kHex[] = "0123456789abcdef";
    check.push_back(kHex[c >> 4]);
    check.push_back(kHex[c & 15]);
  }
  auto known = rt.store->getSetting(kKeyCheck);
  if (!known) return fail(known.error());
  if (!*known) {
    if (auto st = rt.store->putSetting(kKeyCheck, check); !st) return fail(st.error());
  } else if (**known != check) {
    return fail(Error::internal(
        "the server secret " + key_file +
        " is not the one this database was created with: give every node the same secret file "
        "(--secret-file)"));
  }
  if (!cfg.redis_url.empty()) {
    auto counters = RedisCounters::open(cfg.redis_url);
    if (!counters) return fail(counters.error());
    // A node may start while Redis is away: the limits that need it answer 503 until it is back.
    if (auto st = (*counters)->ping(); !st)
      spdlog::warn("redis {} is not answering yet: {}", cfg.redis_url, st.error().message);
    rt.counters = std::move(*counters);
  }
  return &rt;
}

constexpr const char* kBootstrapAccount = "bootstrap_account_sid";
constexpr const char* kBootstrapService = "bootstrap_service_sid";

struct Bootstrap {
  std::string account_sid, auth_token, service_sid;
};

Result<Bootstrap> bootstrap(Runtime& rt, Accounts& accounts, ServiceRegistry& services) {
  Bootstrap b;
  auto account = rt.store->getSetting(kBootstrapAccount);
  if (!account) return fail(account.error());
  if (*account) {
    b.account_sid = **account;
  } else {
    auto created = accounts.createAccount("verifyd", envOr("VERIFYD_ACCOUNT_SID"),
                                          envOr("VERIFYD_AUTH_TOKEN"));
    if (!created) return fail(created.error());
    b.account_sid = created->sid;
    if (auto st = rt.store->putSetting(kBootstrapAccount, b.account_sid); !st)
      return fail(st.error());
  }
  auto token = accounts.authToken(b.account_sid);
  if (!token) return fail(token.error());
  b.auth_token = *token;
  auto service = rt.store->getSetting(kBootstrapService);
  if (!service) return fail(service.error());
  if (*service) {
    b.service_sid = **service;
  } else {
    ServiceSettings settings;
    settings.friendly_name = "verifyd";
    auto created = services.create(b.account_sid, settings);
    if (!created) return fail(created.error());
    b.service_sid = created->sid;
    if (auto st = rt.store->putSetting(kBootstrapService, b.service_sid); !st)
      return fail(st.error());
  }
  return b;
}

// ---- factors ---------------------------------------------------------------------------------

// The factor key, which seals TOTP secrets: --factor-key-file, else VERIFYD_FACTOR_KEY (the key
// itself), else <data-dir>/factor.key, created on first start. That default sits beside the
// database, so a copy of the data directory holds both: production keeps the key elsewhere (a
// secrets mount, an environment variable), and nodes sharing a database need the same key.
Result<std::string> currentFactorKey(const ServeConfig& cfg, Random& random) {
  if (!cfg.factor_key_file.empty()) return loadFactorKey(cfg.factor_key_file, "");
  if (std::string env = envOr("VERIFYD_FACTOR_KEY"); !env.empty()) return loadFactorKey("", env);
  const std::string path = cfg.data_dir + "/factor.key";
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) return loadFactorKey(path, "");
  auto created = createFactorKeyFile(path, random);
  if (created)
    spdlog::warn(
        "created the factor key {}: it seals TOTP secrets, keep a copy apart from the "
        "database (--factor-key-file or VERIFYD_FACTOR_KEY in production)",
        path);
  return created;
}

Result<std::unique_ptr<OpenSslFactorCrypto>> openFactorCrypto(const ServeConfig& cfg, Runtime& rt) {
  auto key = currentFactorKey(cfg, rt.random);
  if (!key) return fail(Error::invalid("factor key", "factor key: " + key.error().message));
  std::string previous;
  if (!cfg.previous_factor_key_file.empty()) {
    auto loaded = loadFactorKey(cfg.previous_factor_key_file, "");
    if (!loaded)
      return fail(
          Error::invalid("previous factor key", "previous factor key: " + loaded.error().message));
    previous = std::move(*loaded);
  }
  // Access tokens are signed with a key derived from the server secret: every node has it.
  return std::make_unique<OpenSslFactorCrypto>(std::move(*key), std::move(previous),
                                               rt.keyring->mac("jwt-key", "verifyd"));
}

// Deletes factors never verified within --unverified-factor-ttl (Twilio purges them too), from
// a thread of its own: every minute, or twice per TTL when that is shorter.
class FactorPurger {
 public:
  FactorPurger(FactorService* factors, int ttl_seconds) {
    if (!factors) return;
    const auto period = std::chrono::seconds(std::clamp(ttl_seconds / 2, 1, 60));
    thread_ = std::thread([this, factors, period] {
      std::unique_lock lock(mutex_);
      while (!cv_.wait_for(lock, period, [this] { return stopping_; })) {
        lock.unlock();
        auto purged = factors->purgeUnverified();
        if (!purged)
          spdlog::warn("purge of unverified factors: {}", purged.error().message);
        else if (*purged > 0)
          spdlog::info("purged {} unverified factors", *purged);
        lock.lock();
      }
    });
  }
  ~FactorPurger() { stop(); }
  FactorPurger(const FactorPurger&) = delete;
  FactorPurger& operator=(const FactorPurger&) = delete;
  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

bool splitListen(const std::string& listen, std::string& host, std::uint16_t& port) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos) return false;
  host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  try {
    int p = std::stoi(listen.substr(colon + 1));
    if (p < 0 || p > 65535) return false;
    port = static_cast<std::uint16_t>(p);
  } catch (...) {
    return false;
  }
  return !host.empty();
}

int serve(const ServeConfig& cfg) {
  auto logger = spdlog::stderr_color_mt("verifyd");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(cfg.log_level));

  std::string host;
  std::uint16_t port = 0;
  if (!splitListen(cfg.listen, host, port)) return startupError("bad --listen " + cfg.listen);

  // Signals are taken by sigwait below; block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  Runtime rt;
  if (auto ok = openRuntime(cfg, rt); !ok) return startupError(ok.error().message);
  LibPhoneNumbers phones;
  Accounts accounts(*rt.store, *rt.keyring, rt.clock, rt.random);
  ServiceRegistry services(*rt.store, rt.clock, rt.random);
  VerifierOptions vopts;
  vopts.code_ttl_seconds = cfg.code_ttl;
  vopts.dev_outbox = cfg.dev_outbox;
  vopts.max_sends_per_destination = cfg.max_sends_per_destination;
  vopts.destination_window_seconds = cfg.destination_window;
  vopts.max_pending_per_number = cfg.max_pending_per_number;
  for (const auto& block : cfg.geo_block) {
    auto colon = block.find(':');
    if (colon == std::string::npos || !geoControlled(block.substr(0, colon)) ||
        block.size() != colon + 3)
      return startupError("bad --geo-block entry '" + block + "': use sms:CC or call:CC");
    vopts.geo_blocked.insert(block);
  }
  vopts.fraud_guard = cfg.fraud_guard;
  vopts.buckets_in_counters = rt.counters != nullptr;
  vopts.fetch_limits = {{cfg.max_fetches_per_minute, 60},
                        {cfg.max_fetches_per_hour, 3600},
                        {cfg.max_fetches_per_day, 86400}};
  HttpServerOptions hopts;
  hopts.host = host;
  hopts.port = port;
  hopts.threads = cfg.threads;
  std::unique_ptr<Router> router;
  HttpServer server(hopts, [&router](const ApiRequest& r, Respond respond) {
    router->handle(r, std::move(respond));
  });
  RouterOptions ropts;
  ropts.dev_outbox = cfg.dev_outbox;
  // Bind first: with port 0 the default public URL names the port the kernel chose.
  auto bound = server.listen();
  if (!bound) return startupError(bound.error().message);
  std::string url_host = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  ropts.public_url = cfg.public_url;
  while (!ropts.public_url.empty() && ropts.public_url.back() == '/') ropts.public_url.pop_back();
  if (ropts.public_url.empty())
    ropts.public_url = "http://" + url_host + ":" + std::to_string(*bound);

  DeliveryOptions dopts;
  if (!cfg.config_file.empty()) {
    auto loaded = loadDeliveryConfig(cfg.config_file);
    if (!loaded)
      return startupError("config " + cfg.config_file + ": " +
                          (loaded.error().param.empty() ? "" : loaded.error().param + ": ") +
                          loaded.error().message);
    dopts = std::move(*loaded);
  }
  dopts.public_url = ropts.public_url;
  auto delivery = DeliveryService::create(*rt.store, *rt.keyring, phones, rt.random, dopts,
                                          dynamic_cast<FactorStore*>(rt.store.get()));
  if (!delivery)
    return startupError("config " + cfg.config_file + ": " +
                        (delivery.error().param.empty() ? "" : delivery.error().param + ": ") +
                        delivery.error().message);
  for (const auto& p : dopts.providers) {
    std::string channels;
    for (const auto& ch : p.channels) channels += (channels.empty() ? "" : ",") + ch;
    spdlog::info("provider {} ({}) for {}", p.name, p.type, channels);
  }
  Verifier verifier(
      *rt.store, *rt.keyring, phones, rt.clock, rt.random, vopts,
      [dev = cfg.dev_outbox](const OutboxMessage& m) {
        if (dev)
          spdlog::info("dev outbox {} {} to {}: {}", m.sid, m.channel, m.to, m.body);
        else
          spdlog::info("message {} {} to {} (no provider configured, not sent)", m.sid, m.channel,
                       m.to);
      },
      // Store completions continue on the I/O threads, never on its writer.
      [&server](std::function<void()> fn) { server.post(std::move(fn)); }, delivery->get(),
      rt.counters.get());
  auto boot = bootstrap(rt, accounts, services);
  if (!boot) return startupError("bootstrap failed: " + boot.error().message);
  RateLimitRegistry rate_limits(*rt.store, *rt.store, rt.clock, rt.random);
  Protection protection(*rt.store, phones, rt.clock, rt.random);
  ropts.auth_failures_before_delay = cfg.auth_failures_before_delay;
  ropts.auth_failures_before_refusal = cfg.auth_failures_before_refusal;
  ropts.auth_failure_window = cfg.auth_failure_window;
  auto factor_crypto = openFactorCrypto(cfg, rt);
  if (!factor_crypto) return startupError(factor_crypto.error().message);
  std::unique_ptr<FactorService> factors;
  if (auto* factor_store = dynamic_cast<FactorStore*>(rt.store.get())) {
    FactorOptions fopts;
    fopts.unverified_factor_ttl = cfg.unverified_factor_ttl;
    factors = std::make_unique<FactorService>(*rt.store, *factor_store, **factor_crypto, rt.clock,
                                              rt.random, fopts, delivery->get());
  } else {
    spdlog::warn("the {} store keeps no factors: Entities, Webhooks and AccessTokens answer 501",
                 cfg.store);
  }
  router = std::make_unique<Router>(accounts, services, rate_limits, protection, verifier,
                                    *rt.store, phones, rt.clock, ropts, delivery->get(),
                                    rt.counters.get(), factors.get());
  FactorPurger purger(factors.get(), cfg.unverified_factor_ttl);
  server.run();
  // Resumes what a previous run left unsent.
  (*delivery)->start();
  std::printf(
      "TWILIO_ACCOUNT_SID=%s\nTWILIO_AUTH_TOKEN=%s\nVERIFICATION_SID=%s\nVERIFYD_BASE_URL=%s\n",
      boot->account_sid.c_str(), boot->auth_token.c_str(), boot->service_sid.c_str(),
      ropts.public_url.c_str());
  std::fflush(stdout);
  spdlog::info("verifyd listening on {}:{} (public URL {}, data in {})", host, *bound,
               ropts.public_url, cfg.data_dir);

  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("signal {}: stopping", sig);
  server.stop();
  purger.stop();
  (*delivery)->stop();
  // Drain the store's writer while the server object (its completions' executor) still exists.
  rt.store.reset();
  return 0;
}

// `verifyd migrate`: the schema (applied by opening the store) and the bootstrap account and
// service, so that nodes started together afterwards all find them.
int migrate(const Config& cfg) {
  Runtime rt;
  if (auto ok = openRuntime(cfg.serve, rt); !ok) return startupError(ok.error().message);
  Accounts accounts(*rt.store, *rt.keyring, rt.clock, rt.random);
  ServiceRegistry services(*rt.store, rt.clock, rt.random);
  auto boot = bootstrap(rt, accounts, services);
  if (!boot) return startupError("bootstrap failed: " + boot.error().message);
  std::printf("TWILIO_ACCOUNT_SID=%s\nTWILIO_AUTH_TOKEN=%s\nVERIFICATION_SID=%s\n",
              boot->account_sid.c_str(), boot->auth_token.c_str(), boot->service_sid.c_str());
  return 0;
}

int accountsCreate(const Config& cfg) {
  Runtime rt;
  if (auto ok = openRuntime(cfg.serve, rt); !ok) return startupError(ok.error().message);
  Accounts accounts(*rt.store, *rt.keyring, rt.clock, rt.random);
  auto created = accounts.createAccount(cfg.friendly_name.empty() ? "verifyd" : cfg.friendly_name);
  if (!created) return startupError(created.error().message);
  std::printf("TWILIO_ACCOUNT_SID=%s\nTWILIO_AUTH_TOKEN=%s\n", created->sid.c_str(),
              created->secret.c_str());
  return 0;
}

int keysCreate(const Config& cfg) {
  Runtime rt;
  if (auto ok = openRuntime(cfg.serve, rt); !ok) return startupError(ok.error().message);
  Accounts accounts(*rt.store, *rt.keyring, rt.clock, rt.random);
  auto created = accounts.createApiKey(cfg.account_sid, cfg.friendly_name);
  if (!created) return startupError(created.error().message);
  std::printf("API_KEY_SID=%s\nAPI_KEY_SECRET=%s\n", created->sid.c_str(), created->secret.c_str());
  return 0;
}

// `verifyd geo set|list` and `verifyd fraud list|lift`: an account's protections, offline.
int protectionCommand(const Config& cfg) {
  Runtime rt;
  if (auto ok = openRuntime(cfg.serve, rt); !ok) return startupError(ok.error().message);
  LibPhoneNumbers phones;
  Protection protection(*rt.store, phones, rt.clock, rt.random);
  if (cfg.command == Command::kGeoSet || cfg.command == Command::kGeoList) {
    if (cfg.command == Command::kGeoSet) {
      auto set =
          protection.setGeoPermission(cfg.account_sid, cfg.channel, cfg.country, cfg.permission);
      if (!set) return startupError(set.error().message);
    }
    auto rules = protection.geoPermissions(cfg.account_sid);
    if (!rules) return startupError(rules.error().message);
    for (const auto& r : *rules)
      std::printf("%s %s %s\n", r.channel.c_str(), r.country.c_str(),
                  r.allowed ? "allow" : "block");
    return 0;
  }
  if (cfg.command == Command::kFraudLift) {
    if (auto st = protection.liftFraudBlock(cfg.account_sid, cfg.prefix); !st)
      return startupError(st.error().kind == ErrorKind::kNotFound ? cfg.prefix + " is not blocked"
                                                                  : st.error().message);
  }
  auto blocks = protection.fraudBlocks(cfg.account_sid);
  if (!blocks) return startupError(blocks.error().message);
  for (const auto& b : *blocks)
    std::printf("%s blocked until %s (%lld sends, %lld conversions)\n", b.prefix.c_str(),
                formatIso8601(b.blocked_until).c_str(), static_cast<long long>(b.sends),
                static_cast<long long>(b.conversions));
  return 0;
}

// `verifyd factors rotate-key --new-key-file F`: every TOTP secret opened with the current key
// (or the previous one) and sealed again under the key in F, in one transaction.
int factorsRotateKey(const Config& cfg) {
  Runtime rt;
  if (auto ok = openRuntime(cfg.serve, rt); !ok) return startupError(ok.error().message);
  auto* store = dynamic_cast<FactorStore*>(rt.store.get());
  if (!store) return startupError("the " + cfg.serve.store + " store keeps no factors");
  auto current = openFactorCrypto(cfg.serve, rt);
  if (!current) return startupError(current.error().message);
  std::error_code ec;
  const bool create = !std::filesystem::exists(cfg.new_key_file, ec);
  auto next_key = create ? createFactorKeyFile(cfg.new_key_file, rt.random)
                         : loadFactorKey(cfg.new_key_file, "");
  if (!next_key) return startupError("new factor key: " + next_key.error().message);
  OpenSslFactorCrypto next(std::move(*next_key), "", rt.keyring->mac("jwt-key", "verifyd"));
  auto count = store->resealFactorSecrets([&](const std::string& sealed) -> Result<std::string> {
    if (sealed.empty()) return std::string();  // push factors have no secret
    auto plain = (*current)->openSecret(sealed);
    if (!plain)
      return fail(
          Error::internal("a factor secret does not open with the current key (give "
                          "--previous-factor-key-file if a rotation is unfinished)"));
    return next.sealSecret(*plain);
  });
  if (!count) {
    // Nothing was resealed: a key made for this run protects nothing.
    if (create) std::filesystem::remove(cfg.new_key_file, ec);
    return startupError(count.error().message);
  }
  std::printf("FACTOR_SECRETS_RESEALED=%d\n", *count);
  std::fprintf(stderr,
               "verifyd: secrets are now sealed under %s: restart every node with "
               "--factor-key-file %s\n",
               cfg.new_key_file.c_str(), cfg.new_key_file.c_str());
  return 0;
}

}  // namespace

int runCommand(const Config& config) {
  switch (config.command) {
    case Command::kServe:
      return serve(config.serve);
    case Command::kMigrate:
      return migrate(config);
    case Command::kAccountsCreate:
      return accountsCreate(config);
    case Command::kKeysCreate:
      return keysCreate(config);
    case Command::kGeoSet:
    case Command::kGeoList:
    case Command::kFraudList:
    case Command::kFraudLift:
      return protectionCommand(config);
    case Command::kFactorsRotateKey:
      return factorsRotateKey(config);
  }
  return 2;
}

}  // namespace verifyd
