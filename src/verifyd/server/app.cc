#include "verifyd/server/app.h"

#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "verifyd/api/router.h"
#include "verifyd/common/clock.h"
#include "verifyd/common/time_format.h"
#include "verifyd/core/accounts.h"
#include "verifyd/core/protection.h"
#include "verifyd/core/rate_limits.h"
#include "verifyd/core/service_registry.h"
#include "verifyd/core/verifier.h"
#include "verifyd/crypto/openssl.h"
#include "verifyd/delivery/delivery_service.h"
#include "verifyd/http/server.h"
#include "verifyd/phone/libphonenumber_numbers.h"
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
  std::unique_ptr<SqliteStore> store;
};

Result<Runtime*> openRuntime(const std::string& data_dir, Runtime& rt) {
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) return fail(Error::internal("cannot create " + data_dir + ": " + ec.message()));
  ::chmod(data_dir.c_str(), 0700);
  auto secret = loadOrCreateSecret(data_dir + "/server.key", rt.random);
  if (!secret) return fail(secret.error());
  rt.keyring = std::make_unique<OpenSslKeyring>(std::move(*secret));
  auto store = SqliteStore::open(data_dir + "/verifyd.db");
  if (!store) return fail(store.error());
  rt.store = std::move(*store);
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
  if (auto ok = openRuntime(cfg.data_dir, rt); !ok) return startupError(ok.error().message);
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
  auto delivery = DeliveryService::create(*rt.store, *rt.keyring, phones, rt.random, dopts);
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
      [&server](std::function<void()> fn) { server.post(std::move(fn)); }, delivery->get());
  auto boot = bootstrap(rt, accounts, services);
  if (!boot) return startupError("bootstrap failed: " + boot.error().message);
  RateLimitRegistry rate_limits(*rt.store, *rt.store, rt.clock, rt.random);
  Protection protection(*rt.store, phones, rt.clock, rt.random);
  ropts.auth_failures_before_delay = cfg.auth_failures_before_delay;
  ropts.auth_failures_before_refusal = cfg.auth_failures_before_refusal;
  ropts.auth_failure_window = cfg.auth_failure_window;
  router = std::make_unique<Router>(accounts, services, rate_limits, protection, verifier,
                                    *rt.store, phones, rt.clock, ropts, delivery->get());
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
  (*delivery)->stop();
  // Drain the store's writer while the server object (its completions' executor) still exists.
  rt.store.reset();
  return 0;
}

int accountsCreate(const Config& cfg) {
  Runtime rt;
  if (auto ok = openRuntime(cfg.serve.data_dir, rt); !ok) return startupError(ok.error().message);
  Accounts accounts(*rt.store, *rt.keyring, rt.clock, rt.random);
  auto created = accounts.createAccount(cfg.friendly_name.empty() ? "verifyd" : cfg.friendly_name);
  if (!created) return startupError(created.error().message);
  std::printf("TWILIO_ACCOUNT_SID=%s\nTWILIO_AUTH_TOKEN=%s\n", created->sid.c_str(),
              created->secret.c_str());
  return 0;
}

int keysCreate(const Config& cfg) {
  Runtime rt;
  if (auto ok = openRuntime(cfg.serve.data_dir, rt); !ok) return startupError(ok.error().message);
  Accounts accounts(*rt.store, *rt.keyring, rt.clock, rt.random);
  auto created = accounts.createApiKey(cfg.account_sid, cfg.friendly_name);
  if (!created) return startupError(created.error().message);
  std::printf("API_KEY_SID=%s\nAPI_KEY_SECRET=%s\n", created->sid.c_str(), created->secret.c_str());
  return 0;
}

// `verifyd geo set|list` and `verifyd fraud list|lift`: an account's protections, offline.
int protectionCommand(const Config& cfg) {
  Runtime rt;
  if (auto ok = openRuntime(cfg.serve.data_dir, rt); !ok) return startupError(ok.error().message);
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

}  // namespace

int runCommand(const Config& config) {
  switch (config.command) {
    case Command::kServe:
      return serve(config.serve);
    case Command::kAccountsCreate:
      return accountsCreate(config);
    case Command::kKeysCreate:
      return keysCreate(config);
    case Command::kGeoSet:
    case Command::kGeoList:
    case Command::kFraudList:
    case Command::kFraudLift:
      return protectionCommand(config);
  }
  return 2;
}

}  // namespace verifyd
