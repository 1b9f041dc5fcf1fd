#include "verifyd/server/config.h"

#include <CLI/CLI.hpp>

namespace verifyd {

ParseOutcome parseCommandLine(int argc, char** argv) {
  Config cfg;
  CLI::App app{
      "verifyd: a self-hosted verification server that speaks Twilio's Verify v2 API.\n"
      "Without a subcommand it serves; every option also reads the environment variable shown."};
  app.set_help_all_flag("--help-all", "Show help for every subcommand");
  auto* serve = app.add_subcommand("serve", "Run the server (the default)");
  auto* accounts = app.add_subcommand("accounts", "Manage accounts");
  auto* accounts_create =
      accounts->add_subcommand("create", "Create an account; prints its SID and auth token");
  auto* keys = app.add_subcommand("keys", "Manage API keys");
  auto* keys_create = keys->add_subcommand(
      "create", "Create an API key (SK…) for an account; prints its secret once");
  auto* geo = app.add_subcommand("geo", "Geo permissions of an account");
  auto* geo_set = geo->add_subcommand("set", "Allow or block sms or call to a country");
  auto* geo_list = geo->add_subcommand("list", "List an account's geo permissions");
  geo->require_subcommand(1);
  auto* fraud = app.add_subcommand("fraud", "Fraud Guard's blocked prefixes of an account");
  auto* fraud_list = fraud->add_subcommand("list", "List the prefixes blocked now");
  auto* fraud_lift = fraud->add_subcommand("lift", "Lift the block of a prefix");
  fraud->require_subcommand(1);
  auto* factors = app.add_subcommand("factors", "TOTP and push factors");
  auto* factors_rotate = factors->add_subcommand(
      "rotate-key",
      "Reseal every TOTP secret under a new factor key (created when the file is absent); "
      "prints the count");
  factors->require_subcommand(1);
  accounts->require_subcommand(1);
  keys->require_subcommand(1);

  ServeConfig& s = cfg.serve;
  auto addDataDir = [&](CLI::App* a) {
    a->add_option("--data-dir", s.data_dir, "Directory of the SQLite database and server secret")
        ->envname("VERIFYD_DATA_DIR")
        ->capture_default_str();
    a->add_option("--store", s.store, "Where state lives: sqlite (embedded) or postgres (shared)")
        ->envname("VERIFYD_STORE")
        ->check(CLI::IsMember({"sqlite", "postgres"}))
        ->capture_default_str();
    a->add_option("--postgres-url", s.postgres_url,
                  "libpq connection string or URL, with --store postgres")
        ->envname("VERIFYD_POSTGRES_URL");
    a->add_option("--secret-file", s.secret_file,
                  "The server secret (created on first start, mode 0600; default "
                  "<data-dir>/server.key). Nodes sharing a database need the same file")
        ->envname("VERIFYD_SECRET_FILE");
  };
  auto addFactorKeys = [&](CLI::App* a) {
    a->add_option(
         "--factor-key-file", s.factor_key_file,
         "The key that seals TOTP secrets (64 hex digits, 32 bytes or their Base64; mode "
         "0600). Default: VERIFYD_FACTOR_KEY (the key itself), else <data-dir>/factor.key, "
         "created on first start: in production keep it apart from the database")
        ->envname("VERIFYD_FACTOR_KEY_FILE");
    a->add_option("--previous-factor-key-file", s.previous_factor_key_file,
                  "During a key rotation: the key being retired, which still opens what it sealed")
        ->envname("VERIFYD_PREVIOUS_FACTOR_KEY_FILE");
  };
  auto addServe = [&](CLI::App* a) {
    a->add_option("--listen", s.listen, "Address and port to listen on (port 0: any free port)")
        ->envname("VERIFYD_LISTEN")
        ->capture_default_str();
    addDataDir(a);
    a->add_option("--public-url", s.public_url,
                  "Base URL in `url`, `links` and paging URLs (default: http:// + listen address)")
        ->envname("VERIFYD_PUBLIC_URL");
    a->add_option("--config", s.config_file,
                  "TOML file with the delivery settings and providers ([delivery], [[provider]])")
        ->envname("VERIFYD_CONFIG")
        ->check(CLI::ExistingFile);
    a->add_option("--code-ttl", s.code_ttl, "Seconds a code stays valid")
        ->envname("VERIFYD_CODE_TTL")
        ->check(CLI::Range(1, 86400))
        ->capture_default_str();
    a->add_option("--log-level", s.log_level, "trace, debug, info, warn, error or off")
        ->envname("VERIFYD_LOG_LEVEL")
        ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}))
        ->capture_default_str();
    a->add_option_function<std::string>(
         "--dev-outbox",
         [&s](const std::string& v) { s.dev_outbox = (v == "on" || v == "true" || v == "1"); },
         "Keep every message in the dev outbox (GET /dev/v1/Messages): on or off")
        ->envname("VERIFYD_DEV_OUTBOX")
        ->check(CLI::IsMember({"on", "off", "true", "false", "1", "0"}));
    a->add_option("--max-sends-per-destination", s.max_sends_per_destination,
                  "Sends to one service and To across verifications within --destination-window "
                  "(the next answers 429/60203; 0 = no limit)")
        ->envname("VERIFYD_MAX_SENDS_PER_DESTINATION")
        ->check(CLI::Range(0, 1000000))
        ->capture_default_str();
    a->add_option("--destination-window", s.destination_window,
                  "Seconds over which --max-sends-per-destination counts")
        ->envname("VERIFYD_DESTINATION_WINDOW")
        ->check(CLI::Range(1, 86400))
        ->capture_default_str();
    a->add_option("--max-pending-per-number", s.max_pending_per_number,
                  "Pending verifications to one number across an account's services (then "
                  "429/60212; 0 = no limit)")
        ->envname("VERIFYD_MAX_PENDING_PER_NUMBER")
        ->check(CLI::Range(0, 1000000))
        ->capture_default_str();
    a->add_option("--max-fetches-per-minute", s.max_fetches_per_minute,
                  "Fetches of one verification per minute (then 429/20429)")
        ->envname("VERIFYD_MAX_FETCHES_PER_MINUTE")
        ->check(CLI::Range(1, 1000000))
        ->capture_default_str();
    a->add_option("--max-fetches-per-hour", s.max_fetches_per_hour,
                  "Fetches of one verification per hour")
        ->envname("VERIFYD_MAX_FETCHES_PER_HOUR")
        ->check(CLI::Range(1, 1000000))
        ->capture_default_str();
    a->add_option("--max-fetches-per-day", s.max_fetches_per_day,
                  "Fetches of one verification per day")
        ->envname("VERIFYD_MAX_FETCHES_PER_DAY")
        ->check(CLI::Range(1, 1000000))
        ->capture_default_str();
    a->add_option("--auth-failures-before-delay", s.auth_failures_before_delay,
                  "Failed authentications from one address before each 401 is held back")
        ->envname("VERIFYD_AUTH_FAILURES_BEFORE_DELAY")
        ->check(CLI::Range(0, 1000000))
        ->capture_default_str();
    a->add_option("--auth-failures-before-refusal", s.auth_failures_before_refusal,
                  "Failed authentications from one address before it is refused (429)")
        ->envname("VERIFYD_AUTH_FAILURES_BEFORE_REFUSAL")
        ->check(CLI::Range(1, 1000000))
        ->capture_default_str();
    a->add_option("--auth-failure-window", s.auth_failure_window,
                  "Seconds over which failed authentications are counted")
        ->envname("VERIFYD_AUTH_FAILURE_WINDOW")
        ->check(CLI::Range(1, 86400))
        ->capture_default_str();
    a->add_option("--geo-block", s.geo_block,
                  "Server-wide geo blocks, e.g. sms:CU,call:KP (an account's own rule wins)")
        ->envname("VERIFYD_GEO_BLOCK")
        ->delimiter(',');
    a->add_option("--fraud-guard", s.fraud_guard,
                  "SMS pumping protection: off, basic, standard or max")
        ->envname("VERIFYD_FRAUD_GUARD")
        ->check(CLI::IsMember({"off", "basic", "standard", "max"}))
        ->capture_default_str();
    a->add_option("--threads", s.threads,
                  "HTTP I/O threads (writes complete asynchronously; one per core is enough)")
        ->envname("VERIFYD_THREADS")
        ->check(CLI::Range(1, 1024))
        ->capture_default_str();
  };
  // The options live on the app only: `serve` and every other subcommand pass them through
  // (fallthrough). Registering them on both made the unparsed copy apply its environment
  // variable over a flag given on the command line.
  addServe(&app);
  app.add_option("--redis-url", s.redis_url,
                 "redis://host:port/db: share rate limit buckets, fetch and failed-auth counters "
                 "between nodes (default: in this process)")
      ->envname("VERIFYD_REDIS_URL");
  addFactorKeys(&app);
  app.add_option("--unverified-factor-ttl", s.unverified_factor_ttl,
                 "Seconds after which a factor never verified is deleted (checked every minute)")
      ->envname("VERIFYD_UNVERIFIED_FACTOR_TTL")
      ->check(CLI::Range(1, 30 * 86400))
      ->capture_default_str();
  serve->fallthrough();
  for (auto* group : {accounts, keys, geo, fraud, factors}) group->fallthrough();
  auto* migrate = app.add_subcommand(
      "migrate", "Create or upgrade the database schema and the bootstrap account, then exit");
  migrate->fallthrough();
  accounts_create->fallthrough();
  accounts_create->add_option("--friendly-name", cfg.friendly_name, "Name of the account");
  keys_create->fallthrough();
  keys_create->add_option("--account", cfg.account_sid, "Account SID (AC…)")->required();
  keys_create->add_option("--friendly-name", cfg.friendly_name, "Name of the key");
  for (auto* g : {geo_set, geo_list}) {
    g->fallthrough();
    g->add_option("--account", cfg.account_sid, "Account SID (AC…)")->required();
  }
  for (auto* f : {fraud_list, fraud_lift}) {
    f->fallthrough();
    f->add_option("--account", cfg.account_sid, "Account SID (AC…)")->required();
  }
  fraud_lift->add_option("--prefix", cfg.prefix, "The blocked prefix, e.g. +2250700000")
      ->required();
  factors_rotate->fallthrough();
  factors_rotate
      ->add_option("--new-key-file", cfg.new_key_file,
                   "The new factor key (created, mode 0600, when absent); restart with it as "
                   "--factor-key-file afterwards")
      ->required();
  geo_set->add_option("--channel", cfg.channel, "sms or call")->required();
  geo_set->add_option("--country", cfg.country, "ISO 3166-1 alpha-2 code, e.g. CU")->required();
  geo_set->add_option("--permission", cfg.permission, "allow or block")->required();
  app.footer(
      "On first start verifyd creates an account and a Verify service and prints them as .env "
      "lines.\nVERIFYD_ACCOUNT_SID and VERIFYD_AUTH_TOKEN, when set on first start, give that "
      "account's SID and token.");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return ParseOutcome{std::nullopt, app.exit(e)};
  }
  if (migrate->parsed()) cfg.command = Command::kMigrate;
  if (accounts_create->parsed()) cfg.command = Command::kAccountsCreate;
  if (keys_create->parsed()) cfg.command = Command::kKeysCreate;
  if (geo_set->parsed()) cfg.command = Command::kGeoSet;
  if (geo_list->parsed()) cfg.command = Command::kGeoList;
  if (fraud_list->parsed()) cfg.command = Command::kFraudList;
  if (fraud_lift->parsed()) cfg.command = Command::kFraudLift;
  if (factors_rotate->parsed()) cfg.command = Command::kFactorsRotateKey;
  return ParseOutcome{cfg, 0};
}

}  // namespace verifyd
