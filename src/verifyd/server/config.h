#pragma once
// Command line and environment: every setting is a flag and a VERIFYD_* variable.
#include <optional>
#include <string>
#include <vector>

namespace verifyd {

struct ServeConfig {
  std::string listen = "127.0.0.1:8080";
  std::string data_dir = "./data";
  std::string public_url;        // empty: http:// + the bound address
  std::string store = "sqlite";  // or "postgres"
  std::string postgres_url;      // libpq connection string, with store = postgres
  std::string redis_url;         // shared counters; empty: in this process
  std::string secret_file;       // empty: <data_dir>/server.key
  std::string config_file;       // delivery providers (TOML); empty: the dev outbox only
  int code_ttl = 600;
  std::string log_level = "info";
  bool dev_outbox = true;
  int threads = 2;
  int max_sends_per_destination = 5;
  int destination_window = 600;
  int max_pending_per_number = 5;
  int max_fetches_per_minute = 60, max_fetches_per_hour = 180, max_fetches_per_day = 250;
  int auth_failures_before_delay = 5, auth_failures_before_refusal = 20;
  int auth_failure_window = 300;
  std::vector<std::string> geo_block;
  std::string fraud_guard = "standard";
  // Factors (TOTP seeds are sealed under the factor key; see app.cc for where it comes from).
  std::string factor_key_file;           // empty: VERIFYD_FACTOR_KEY, else <data_dir>/factor.key
  std::string previous_factor_key_file;  // a key being rotated out: still opens its secrets
  int unverified_factor_ttl = 86400;  // seconds before an unverified factor is purged  // "sms:CU",
                                      // "call:KP": blocked unless an account allows
};

enum class Command {
  kServe,
  kMigrate,
  kAccountsCreate,
  kKeysCreate,
  kGeoSet,
  kGeoList,
  kFraudList,
  kFraudLift,
  kFactorsRotateKey
};

struct Config {
  Command command = Command::kServe;
  ServeConfig serve;
  std::string friendly_name;                 // accounts create / keys create
  std::string account_sid;                   // keys create, geo
  std::string channel, country, permission;  // geo set
  std::string prefix;                        // fraud lift
  std::string new_key_file;                  // factors rotate-key
};

// Parses argv; on --help or a usage error prints and returns the exit code to use.
struct ParseOutcome {
  std::optional<Config> config;
  int exit_code = 0;
};
ParseOutcome parseCommandLine(int argc, char** argv);

}  // namespace verifyd
