// Pre-fills a verifyd data directory with pending verifications, through the same store layer
// and Verifier the server uses, for the check and at-scale benchmark scenarios.
//
//   verifyd_bench_loader --data-dir DIR --account AC… --service VA… --count N --first I
//                        [--code 135790] [--threads 32]
//
// Verification k (I <= k < I+N) goes to number(k), the numbering bench/wrk/*.lua uses. Run it
// while verifyd is stopped.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "verifyd/common/clock.h"
#include "verifyd/core/verifier.h"
#include "verifyd/crypto/openssl.h"
#include "verifyd/phone/libphonenumber_numbers.h"
#include "verifyd/storage/sqlite/sqlite_store.h"

namespace {

// Valid US numbers: 12 area codes x 8M subscriber numbers each.
std::string number(long long i) {
  static const char* kAreas[] = {"201", "202", "203", "205", "206", "207",
                                 "208", "209", "210", "212", "213", "214"};
  return std::string("+1") + kAreas[(i / 8000000) % 12] + std::to_string(2000000 + i % 8000000);
}

// Accepts every number: the loader writes numbers known to be valid and skips libphonenumber's
// cost, which the server pays on its own requests.
class TrustedNumbers final : public verifyd::PhoneNumbers {
 public:
  bool isValidE164(std::string_view) const override { return true; }
  std::string regionOf(std::string_view) const override { return "US"; }
  std::string mainRegionOf(std::string_view) const override { return "US"; }
  verifyd::NumberInfo describe(std::string_view number, std::string_view) const override {
    verifyd::NumberInfo info;
    info.valid = true;
    info.e164 = std::string(number);
    info.line_type = "unknown";
    return info;
  }
};

}  // namespace

int main(int argc, char** argv) {
  std::string data_dir, account, service, code = "135790";
  long long count = 0, first = 0;
  int threads = 32;
  CLI::App app{"verifyd benchmark loader"};
  app.add_option("--data-dir", data_dir)->required();
  app.add_option("--account", account)->required();
  app.add_option("--service", service)->required();
  app.add_option("--count", count)->required();
  app.add_option("--first", first)->required();
  app.add_option("--code", code);
  app.add_option("--threads", threads);
  CLI11_PARSE(app, argc, argv);

  verifyd::OsRandom random;
  auto secret = verifyd::loadOrCreateSecret(data_dir + "/server.key", random);
  if (!secret) {
    std::fprintf(stderr, "loader: %s\n", secret.error().message.c_str());
    return 1;
  }
  verifyd::OpenSslKeyring keyring(*secret);
  // Not fsync'd per commit while loading; the database is synced once at the end.
  auto store = verifyd::SqliteStore::open(data_dir + "/verifyd.db", /*durable=*/false);
  if (!store) {
    std::fprintf(stderr, "loader: %s\n", store.error().message.c_str());
    return 1;
  }
  verifyd::SystemClock clock;
  TrustedNumbers phones;
  verifyd::VerifierOptions options;
  options.code_ttl_seconds = 7 * 86400;
  options.dev_outbox = false;
  // Consecutive numbers with no code ever checked is what Fraud Guard stops: not for a loader.
  options.fraud_guard = "off";
  verifyd::Verifier verifier(**store, keyring, phones, clock, random, options);

  std::atomic<long long> next{first}, failed{0};
  const long long end = first + count;
  auto started = std::chrono::steady_clock::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&] {
      for (long long k; (k = next.fetch_add(1)) < end;) {
        verifyd::StartParams p{number(k), "sms", code, {}, {}, {}, {}};
        if (!verifier.start(account, service, p)) ++failed;
        if ((k - first) % 1000000 == 999999)
          std::fprintf(stderr, "loader: %lld written\n", k - first + 1);
      }
    });
  for (auto& t : pool) t.join();
  store->reset();
  ::sync();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf("loaded %lld verifications in %.1f s (%.0f/s), %lld failed\n", count, secs,
              count / secs, failed.load());
  return failed ? 1 : 0;
}
