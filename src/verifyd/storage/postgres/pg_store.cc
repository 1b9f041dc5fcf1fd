#include "verifyd/storage/postgres/pg_store.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "verifyd/storage/postgres/pg_conn.h"
#include "verifyd/storage/record_json.h"

namespace verifyd {

using storage::decodeAttempts;
using storage::decodeSettings;
using storage::encodeAttempts;
using storage::encodeSettings;

using json = nlohmann::json;
using pg::change;
using pg::Conn;
using pg::pageQuery;
using pg::Params;
using pg::Rows;
using pg::run;
using pg::scalar;
using pg::selectOne;

namespace {

// Version 1: the tables and indexes of SQLite's schema version 6. Later versions append
// entries to kMigrations; each runs in its own transaction with its row in verifyd_schema.
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE settings(key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE accounts(
  sid text PRIMARY KEY, friendly_name text NOT NULL, auth_token_mac bytea NOT NULL,
  auth_token_sealed bytea NOT NULL, date_created bigint NOT NULL);
CREATE TABLE api_keys(
  sid text PRIMARY KEY, account_sid text NOT NULL REFERENCES accounts(sid),
  friendly_name text NOT NULL, secret_mac bytea NOT NULL, date_created bigint NOT NULL);
CREATE TABLE services(
  seq bigserial PRIMARY KEY, sid text NOT NULL UNIQUE, account_sid text NOT NULL,
  settings text NOT NULL, date_created bigint NOT NULL, date_updated bigint NOT NULL);
CREATE INDEX services_by_account ON services(account_sid, seq);
CREATE TABLE verifications(
  seq bigserial PRIMARY KEY, sid text NOT NULL UNIQUE, service_sid text NOT NULL,
  account_sid text NOT NULL, to_ text NOT NULL, channel text NOT NULL, status text NOT NULL,
  code_hash bytea NOT NULL, code_seed bytea NOT NULL, code_length integer NOT NULL,
  check_attempts integer NOT NULL, amount text, payee text, send_attempts text NOT NULL,
  date_created bigint NOT NULL, date_updated bigint NOT NULL, expires_at bigint NOT NULL,
  fraud_prefix text);
CREATE INDEX verifications_by_to ON verifications(to_, service_sid, seq);
CREATE TABLE outbox(
  seq bigserial PRIMARY KEY, sid text NOT NULL UNIQUE, account_sid text NOT NULL,
  service_sid text NOT NULL, verification_sid text NOT NULL, to_ text NOT NULL,
  channel text NOT NULL, body text NOT NULL, date_created bigint NOT NULL,
  code text NOT NULL DEFAULT '');
CREATE INDEX outbox_by_account_to ON outbox(account_sid, to_, seq);
CREATE INDEX outbox_by_account ON outbox(account_sid, seq);
CREATE TABLE rate_limits(
  seq bigserial PRIMARY KEY, sid text NOT NULL UNIQUE, service_sid text NOT NULL,
  account_sid text NOT NULL, unique_name text NOT NULL, description text,
  date_created bigint NOT NULL, date_updated bigint NOT NULL, UNIQUE(service_sid, unique_name));
CREATE TABLE buckets(
  seq bigserial PRIMARY KEY, sid text NOT NULL UNIQUE, rate_limit_sid text NOT NULL,
  service_sid text NOT NULL, account_sid text NOT NULL, max integer NOT NULL,
  "interval" integer NOT NULL, date_created bigint NOT NULL, date_updated bigint NOT NULL,
  UNIQUE(rate_limit_sid, "interval"));
CREATE TABLE rate_events(bucket_sid text NOT NULL, key text NOT NULL, t bigint NOT NULL);
CREATE INDEX rate_events_by_key ON rate_events(bucket_sid, key, t);
CREATE TABLE safe_numbers(
  account_sid text NOT NULL, phone_number text NOT NULL, sid text NOT NULL UNIQUE,
  date_created bigint NOT NULL, PRIMARY KEY(account_sid, phone_number));
CREATE TABLE geo_permissions(
  account_sid text NOT NULL, channel text NOT NULL, country text NOT NULL,
  allowed boolean NOT NULL, date_updated bigint NOT NULL,
  PRIMARY KEY(account_sid, channel, country));
CREATE TABLE fraud_counts(
  account_sid text NOT NULL, prefix text NOT NULL, hour bigint NOT NULL,
  sends bigint NOT NULL, conversions bigint NOT NULL,
  PRIMARY KEY(account_sid, prefix, hour));
CREATE TABLE fraud_blocks(
  account_sid text NOT NULL, prefix text NOT NULL, blocked_until bigint NOT NULL,
  date_created bigint NOT NULL, sends bigint NOT NULL, conversions bigint NOT NULL,
  PRIMARY KEY(account_sid, prefix));
CREATE TABLE attempts(
  seq bigserial PRIMARY KEY, sid text NOT NULL UNIQUE, account_sid text NOT NULL,
  service_sid text NOT NULL, verification_sid text NOT NULL, channel text NOT NULL,
  to_ text NOT NULL, country text NOT NULL, locale text NOT NULL, code_length integer NOT NULL,
  payload bytea NOT NULL, message_status text NOT NULL, provider text NOT NULL,
  provider_message_id text NOT NULL, error_code text NOT NULL, error_message text NOT NULL,
  tries integer NOT NULL, provider_tries integer NOT NULL, outcome_unknown boolean NOT NULL,
  next_try_ms bigint NOT NULL, lease_token text NOT NULL,
  date_created bigint NOT NULL, date_updated bigint NOT NULL);
CREATE INDEX attempts_by_account ON attempts(account_sid, seq);
CREATE INDEX attempts_by_verification ON attempts(verification_sid);
CREATE INDEX attempts_due ON attempts(next_try_ms) WHERE message_status IN ('queued', 'sending');
CREATE TABLE messaging_configs(
  seq bigserial PRIMARY KEY, service_sid text NOT NULL, account_sid text NOT NULL,
  country text NOT NULL, messaging_service_sid text NOT NULL, date_created bigint NOT NULL,
  date_updated bigint NOT NULL, UNIQUE(service_sid, country));
)sql";
// Version 2: the tables and indexes of SQLite's schema version 7: factors (TOTP and push) with
// their entities, challenges, access tokens, webhooks and the webhook deliveries (the outbox of
// events, claimed like delivery attempts). JSON values are text, as in version 1.
constexpr const char* kSchemaV2 = R"sql(
CREATE TABLE entities(
  seq bigserial PRIMARY KEY, sid text NOT NULL UNIQUE, account_sid text NOT NULL,
  service_sid text NOT NULL, identity text NOT NULL, date_created bigint NOT NULL,
  date_updated bigint NOT NULL, UNIQUE(service_sid, identity));
CREATE TABLE factors(
  seq bigserial PRIMARY KEY, sid text NOT NULL UNIQUE, account_sid text NOT NULL,
  service_sid text NOT NULL, entity_sid text NOT NULL, identity text NOT NULL,
  friendly_name text NOT NULL, status text NOT NULL, factor_type text NOT NULL,
  totp_alg text NOT NULL, totp_skew integer NOT NULL, totp_code_length integer NOT NULL,
  totp_time_step integer NOT NULL, push_sdk_version text NOT NULL, push_app_id text NOT NULL,
  push_notification_platform text NOT NULL, push_notification_token text NOT NULL,
  metadata text, secret_sealed bytea NOT NULL, public_key text NOT NULL,
  binding_alg text NOT NULL, failed_attempts integer NOT NULL, last_step bigint NOT NULL,
  date_created bigint NOT NULL, date_updated bigint NOT NULL);
CREATE INDEX factors_by_identity ON factors(service_sid, identity, seq);
CREATE INDEX factors_unverified ON factors(date_created) WHERE status = 'unverified';
CREATE TABLE challenges(
  seq bigserial PRIMARY KEY, sid text NOT NULL UNIQUE, account_sid text NOT NULL,
  service_sid text NOT NULL, entity_sid text NOT NULL, identity text NOT NULL,
  factor_sid text NOT NULL, factor_type text NOT NULL, status text NOT NULL,
  responded_reason text NOT NULL, details_message text NOT NULL, details_fields text NOT NULL,
  hidden_details text, metadata text, expiration_date bigint NOT NULL,
  date_responded bigint NOT NULL, failed_attempts integer NOT NULL,
  date_created bigint NOT NULL, date_updated bigint NOT NULL);
CREATE INDEX challenges_by_identity ON challenges(service_sid, identity, seq);
CREATE INDEX challenges_by_factor ON challenges(factor_sid, seq);
CREATE TABLE access_tokens(
  seq bigserial PRIMARY KEY, sid text NOT NULL UNIQUE, account_sid text NOT NULL,
  service_sid text NOT NULL, entity_identity text NOT NULL, factor_type text NOT NULL,
  factor_friendly_name text, token text NOT NULL, ttl integer NOT NULL,
  date_created bigint NOT NULL);
CREATE TABLE webhooks(
  seq bigserial PRIMARY KEY, sid text NOT NULL UNIQUE, account_sid text NOT NULL,
  service_sid text NOT NULL, friendly_name text NOT NULL, event_types text NOT NULL,
  status text NOT NULL, version text NOT NULL, webhook_url text NOT NULL,
  webhook_method text NOT NULL, date_created bigint NOT NULL, date_updated bigint NOT NULL);
CREATE INDEX webhooks_by_service ON webhooks(service_sid, seq);
CREATE TABLE webhook_deliveries(
  seq bigserial PRIMARY KEY, sid text NOT NULL UNIQUE, kind text NOT NULL,
  account_sid text NOT NULL, service_sid text NOT NULL, webhook_sid text NOT NULL,
  url text NOT NULL, body text NOT NULL, status text NOT NULL, tries integer NOT NULL,
  error text NOT NULL, next_try_ms bigint NOT NULL, lease_token text NOT NULL,
  date_created bigint NOT NULL, date_updated bigint NOT NULL);
CREATE INDEX webhook_deliveries_by_service ON webhook_deliveries(service_sid, seq);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(next_try_ms)
  WHERE status IN ('queued', 'sending');
)sql";
const char* const kMigrations[] = {kSchemaV1, kSchemaV2};
static_assert(sizeof(kMigrations) / sizeof(kMigrations[0]) == PgStore::kSchemaVersion);

constexpr int kRetries = 3;  // after a serialization failure or a deadlock

// One transaction: commits when `fn` succeeds, rolls back otherwise; a serialization failure
// or deadlock runs it again.
Status transact(Conn& c, const std::function<Status(Conn&)>& fn) {
  for (int attempt = 0;; ++attempt) {
    c.clearState();
    if (auto st = c.begin(); !st) return st;
    Status r;
    try {
      r = fn(c);
    } catch (const std::exception& e) {
      r = fail(Error::internal(e.what()));
    }
    if (r) {
      r = c.commit();
      if (r) return r;
    } else {
      c.rollback();
    }
    if (c.retryable() && attempt < kRetries) continue;
    return r;
  }
}

// Serialises transactions on `key` (across nodes) until the end of the current transaction.
Status lockKey(Conn& c, const std::string& key) {
  auto r =
      c.query("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 0))", Params().text(key));
  if (!r) return fail(r.error());
  return {};
}

Status migrateOn(Conn& c) {
  if (auto st = c.ensure(); !st) return st;
  if (auto r =
          c.query("SELECT pg_advisory_lock($1::bigint)", Params().integer(PgStore::kMigrationLock));
      !r)
    return fail(r.error());
  Status result = [&]() -> Status {
    if (auto r = c.exec("CREATE TABLE IF NOT EXISTS verifyd_schema(version integer NOT NULL)"); !r)
      return fail(r.error());
    auto v = c.exec("SELECT COALESCE(MAX(version), 0) FROM verifyd_schema");
    if (!v) return fail(v.error());
    const std::int64_t version = v->integer(0, 0);
    if (version > PgStore::kSchemaVersion)
      return fail(Error::internal("database schema is newer than this verifyd (version " +
                                  std::to_string(version) + ")"));
    // Each version in its own transaction, so an interrupted upgrade resumes where it stopped.
    for (std::int64_t next = version + 1; next <= PgStore::kSchemaVersion; ++next) {
      if (auto r = c.exec("BEGIN"); !r) return fail(r.error());
      Status st = [&]() -> Status {
        if (auto r = c.exec(kMigrations[next - 1]); !r) return fail(r.error());
        if (auto r =
                c.query("INSERT INTO verifyd_schema(version) VALUES($1)", Params().integer(next));
            !r)
          return fail(r.error());
        return c.commit();
      }();
      if (!st) {
        c.rollback();
        return st;
      }
    }
    return {};
  }();
  if (c.connected())
    (void)c.query("SELECT pg_advisory_unlock($1::bigint)",
                  Params().integer(PgStore::kMigrationLock));
  return result;
}

int toInt(std::int64_t v) { return static_cast<int>(v); }

// ---- row readers: column 0 is `seq` where a table has one --------------------------------

const std::string kServiceCols = "seq, sid, account_sid, settings, date_created, date_updated";

Service readService(const Rows& r, int i) {
  return Service{r.text(i, 1), r.text(i, 2), decodeSettings(r.text(i, 3)), r.integer(i, 4),
                 r.integer(i, 5)};
}

const std::string kVerificationCols =
    "sid, service_sid, account_sid, to_, channel, status, code_hash, code_seed, code_length, "
    "check_attempts, amount, payee, send_attempts, date_created, date_updated, expires_at, "
    "fraud_prefix";

Verification readVerification(const Rows& r, int i) {
  Verification v;
  v.sid = r.text(i, 0);
  v.service_sid = r.text(i, 1);
  v.account_sid = r.text(i, 2);
  v.to = r.text(i, 3);
  v.channel = r.text(i, 4);
  v.status = r.text(i, 5);
  v.code_hash = r.bytes(i, 6);
  v.code_seed = r.bytes(i, 7);
  v.code_length = toInt(r.integer(i, 8));
  v.check_attempts = toInt(r.integer(i, 9));
  v.amount = r.optText(i, 10);
  v.payee = r.optText(i, 11);
  v.send_attempts = decodeAttempts(r.text(i, 12));
  v.date_created = r.integer(i, 13);
  v.date_updated = r.integer(i, 14);
  v.expires_at = r.integer(i, 15);
  v.fraud_prefix = r.optText(i, 16);
  return v;
}

const std::string kSelectVerificationBySid =
    "SELECT " + kVerificationCols + " FROM verifications WHERE sid = $1 AND service_sid = $2";
const std::string kSelectLatestVerificationByTo =
    "SELECT " + kVerificationCols +
    " FROM verifications WHERE service_sid = $1 AND to_ = $2 ORDER BY seq DESC LIMIT 1";
const std::string kSelectPendingVerification =
    "SELECT " + kVerificationCols +
    " FROM verifications WHERE service_sid = $1 AND to_ = $2 AND status = 'pending' AND "
    "expires_at > $3 ORDER BY seq DESC LIMIT 1";
const std::string kInsertVerification =
    "INSERT INTO verifications(" + kVerificationCols +
    ") VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)";

const std::string kRateLimitCols =
    "seq, sid, service_sid, account_sid, unique_name, description, date_created, date_updated";
const std::string kBucketCols =
    "seq, sid, rate_limit_sid, service_sid, account_sid, max, \"interval\", date_created, "
    "date_updated";

RateLimit readRateLimit(const Rows& r, int i) {
  return RateLimit{r.text(i, 1),    r.text(i, 2),    r.text(i, 3),   r.text(i, 4),
                   r.optText(i, 5), r.integer(i, 6), r.integer(i, 7)};
}
Bucket readBucket(const Rows& r, int i) {
  return Bucket{r.text(i, 1),           r.text(i, 2),           r.text(i, 3),    r.text(i, 4),
                toInt(r.integer(i, 5)), toInt(r.integer(i, 6)), r.integer(i, 7), r.integer(i, 8)};
}

const std::string kAttemptCols =
    "sid, account_sid, service_sid, verification_sid, channel, to_, country, locale, code_length, "
    "payload, message_status, provider, provider_message_id, error_code, error_message, tries, "
    "provider_tries, outcome_unknown, next_try_ms, lease_token, date_created, date_updated";

// The attempt's columns (qualified: the conversion flag reads verifications) after `seq`.
const std::string kAttemptSelectCols = [] {
  std::string cols = "a.seq";
  const std::string& all = kAttemptCols;
  for (std::size_t start = 0; start < all.size();) {
    std::size_t comma = all.find(", ", start);
    cols += ", a." + all.substr(start, comma == std::string::npos ? comma : comma - start);
    if (comma == std::string::npos) break;
    start = comma + 2;
  }
  return cols +
         ", EXISTS(SELECT 1 FROM verifications v WHERE v.sid = a.verification_sid AND v.status "
         "= 'approved')";
}();
const std::string kAttemptSelect = "SELECT " + kAttemptSelectCols + " FROM attempts a";

// Reads kAttemptCols starting at column `c`, then the converted flag.
DeliveryAttempt readAttempt(const Rows& r, int i, int c) {
  DeliveryAttempt a;
  a.sid = r.text(i, c + 0);
  a.account_sid = r.text(i, c + 1);
  a.service_sid = r.text(i, c + 2);
  a.verification_sid = r.text(i, c + 3);
  a.channel = r.text(i, c + 4);
  a.to = r.text(i, c + 5);
  a.country = r.text(i, c + 6);
  a.locale = r.text(i, c + 7);
  a.code_length = toInt(r.integer(i, c + 8));
  a.payload_sealed = r.bytes(i, c + 9);
  a.message_status = r.text(i, c + 10);
  a.provider = r.text(i, c + 11);
  a.provider_message_id = r.text(i, c + 12);
  a.error_code = r.text(i, c + 13);
  a.error_message = r.text(i, c + 14);
  a.tries = toInt(r.integer(i, c + 15));
  a.provider_tries = toInt(r.integer(i, c + 16));
  a.outcome_unknown = r.boolean(i, c + 17);
  a.next_try_ms = r.integer(i, c + 18);
  a.lease_until_ms = a.message_status == message_status::kSending ? a.next_try_ms : 0;
  a.lease_token = r.text(i, c + 19);
  a.date_created = r.integer(i, c + 20);
  a.date_updated = r.integer(i, c + 21);
  a.converted = r.boolean(i, c + 22);
  return a;
}

const std::string kMessagingConfigCols =
    "seq, account_sid, service_sid, country, messaging_service_sid, date_created, date_updated";
MessagingConfiguration readMessagingConfig(const Rows& r, int i) {
  return MessagingConfiguration{r.text(i, 1), r.text(i, 2),    r.text(i, 3),
                                r.text(i, 4), r.integer(i, 5), r.integer(i, 6)};
}
const std::string kSelectMessagingConfig =
    "SELECT " + kMessagingConfigCols +
    " FROM messaging_configs WHERE service_sid = $1 AND country = $2";

// How far along a message status is: receipts only move an attempt forward.
int statusRank(std::string_view s) {
  if (s == message_status::kQueued) return 0;
  if (s == message_status::kSending) return 1;
  if (s == message_status::kSent) return 2;
  return 3;  // delivered, undelivered, failed: final
}

// Locks the parent row of a count-limited child (the service of a rate limit, the rate limit
// of a bucket) so that concurrent creates count one after another. A parent that has no row
// is locked by key instead.
Status lockParent(Conn& c, const char* table, std::string_view sid) {
  auto r = c.query(std::string("SELECT 1 FROM ") + table + " WHERE sid = $1 FOR UPDATE",
                   Params().text(sid));
  if (!r) return fail(r.error());
  if (!r->empty()) return {};
  return lockKey(c, std::string(table) + ":" + std::string(sid));
}

}  // namespace

// ---- connections, transactions, workers -------------------------------------------------------

class PgStore::Lease {
 public:
  explicit Lease(PgStore& s) : s_(s) {
    std::unique_lock lock(s_.pool_mu_);
    s_.pool_cv_.wait(lock, [&] { return !s_.idle_.empty(); });
    conn_ = std::move(s_.idle_.back());
    s_.idle_.pop_back();
  }
  ~Lease() {
    {
      std::lock_guard lock(s_.pool_mu_);
      s_.idle_.push_back(std::move(conn_));
    }
    s_.pool_cv_.notify_one();
  }
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  Conn& conn() { return *conn_; }

 private:
  PgStore& s_;
  std::unique_ptr<Conn> conn_;
};

namespace {
pg::ConnOptions connOptions(const PgStoreOptions& o) {
  return pg::ConnOptions{o.connect_timeout_s, o.statement_timeout_ms};
}
}  // namespace

Status PgStore::migrate(const std::string& conninfo, PgStoreOptions options) {
  Conn c(conninfo, connOptions(options));
  return migrateOn(c);
}

Result<std::unique_ptr<PgStore>> PgStore::open(const std::string& conninfo,
                                               PgStoreOptions options) {
  if (options.pool_size < 1) options.pool_size = 1;
  if (options.async_workers < 1) options.async_workers = 1;
  if (auto st = migrate(conninfo, options); !st) return fail(st.error());
  return std::unique_ptr<PgStore>(new PgStore(conninfo, options));
}

PgStore::PgStore(std::string conninfo, PgStoreOptions options)
    : conninfo_(std::move(conninfo)), options_(options) {
  // Connections open on first use (and again after a failure).
  for (int i = 0; i < options_.pool_size; ++i)
    idle_.push_back(std::make_unique<Conn>(conninfo_, connOptions(options_)));
  for (int i = 0; i < options_.async_workers; ++i) workers_.emplace_back([this] { workerLoop(); });
}

PgStore::~PgStore() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  for (auto& w : workers_) w.join();
}

void PgStore::submit(std::function<void(Conn*)> job) {
  {
    std::lock_guard lock(mu_);
    if (!stopping_) {
      queue_.push_back(std::move(job));
      work_cv_.notify_one();
      return;
    }
  }
  job(nullptr);  // the store is stopping: the job fails at once
}

void PgStore::workerLoop() {
  Conn conn(conninfo_, connOptions(options_));
  for (;;) {
    std::function<void(Conn*)> job;
    {
      std::unique_lock lock(mu_);
      work_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and nothing left to do
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    job(&conn);
  }
}

Status PgStore::write(const TxnFn& fn) {
  Lease lease(*this);
  return transact(lease.conn(), fn);
}

Status PgStore::readWith(const TxnFn& fn) {
  Lease lease(*this);
  Conn& c = lease.conn();
  for (int attempt = 0;; ++attempt) {
    if (auto st = c.ensure(); !st) return st;
    Status r = [&]() -> Status {
      try {
        return fn(c);
      } catch (const std::exception& e) {
        return fail(Error::internal(e.what()));
      }
    }();
    // A pooled connection that died while idle: reads are safe to run again on a new one.
    if (r || c.connected() || attempt == 1) return r;
  }
}

// ---- accounts -------------------------------------------------------------------------------

Status PgStore::createAccount(const Account& a) {
  return write([&](Conn& c) {
    return run(c,
               "INSERT INTO accounts(sid, friendly_name, auth_token_mac, auth_token_sealed, "
               "date_created) VALUES($1, $2, $3, $4, $5)",
               Params()
                   .text(a.sid)
                   .text(a.friendly_name)
                   .bytes(a.auth_token_mac)
                   .bytes(a.auth_token_sealed)
                   .integer(a.date_created));
  });
}

Result<std::optional<Account>> PgStore::getAccount(std::string_view sid) {
  return read<std::optional<Account>>([&](Conn& c) {
    return selectOne<Account>(
        c,
        "SELECT sid, friendly_name, auth_token_mac, auth_token_sealed, date_created FROM "
        "accounts WHERE sid = $1",
        Params().text(sid), [](const Rows& r, int i) {
          return Account{r.text(i, 0), r.text(i, 1), r.bytes(i, 2), r.bytes(i, 3), r.integer(i, 4)};
        });
  });
}

Status PgStore::createApiKey(const ApiKey& k) {
  return write([&](Conn& c) {
    return run(c,
               "INSERT INTO api_keys(sid, account_sid, friendly_name, secret_mac, date_created) "
               "VALUES($1, $2, $3, $4, $5)",
               Params()
                   .text(k.sid)
                   .text(k.account_sid)
                   .text(k.friendly_name)
                   .bytes(k.secret_mac)
                   .integer(k.date_created));
  });
}

Result<std::optional<Credential>> PgStore::findCredential(std::string_view sid) {
  return read<std::optional<Credential>>([&](Conn& c) {
    return selectOne<Credential>(
        c,
        "SELECT sid, auth_token_mac FROM accounts WHERE sid = $1 UNION ALL "
        "SELECT account_sid, secret_mac FROM api_keys WHERE sid = $1",
        Params().text(sid), [](const Rows& r, int i) {
          return Credential{r.text(i, 0), r.bytes(i, 1)};
        });
  });
}

Result<std::optional<std::string>> PgStore::getSetting(std::string_view key) {
  return read<std::optional<std::string>>([&](Conn& c) {
    return selectOne<std::string>(c, "SELECT value FROM settings WHERE key = $1",
                                  Params().text(key),
                                  [](const Rows& r, int i) { return r.text(i, 0); });
  });
}

Status PgStore::putSetting(std::string_view key, std::string_view value) {
  return write([&](Conn& c) {
    return run(c,
               "INSERT INTO settings(key, value) VALUES($1, $2) ON CONFLICT(key) DO UPDATE SET "
               "value = excluded.value",
               Params().text(key).text(value));
  });
}

// ---- services -------------------------------------------------------------------------------

Status PgStore::createService(const Service& s) {
  return write([&](Conn& c) {
    return run(c,
               "INSERT INTO services(sid, account_sid, settings, date_created, date_updated) "
               "VALUES($1, $2, $3, $4, $5)",
               Params()
                   .text(s.sid)
                   .text(s.account_sid)
                   .text(encodeSettings(s.settings))
                   .integer(s.date_created)
                   .integer(s.date_updated));
  });
}

Result<std::optional<Service>> PgStore::getService(std::string_view account_sid,
                                                   std::string_view sid) {
  return read<std::optional<Service>>([&](Conn& c) {
    return selectOne<Service>(
        c, "SELECT " + kServiceCols + " FROM services WHERE sid = $1 AND account_sid = $2",
        Params().text(sid).text(account_sid), readService);
  });
}

Result<Page<Service>> PgStore::listServices(std::string_view account_sid, PageCursor cursor,
                                            int page_size) {
  return read<Page<Service>>([&](Conn& c) {
    return pageQuery<Service>(c, kServiceCols, "services", "account_sid = $1",
                              Params().text(account_sid), true, cursor, page_size, readService);
  });
}

Result<Service> PgStore::updateService(std::string_view account_sid, std::string_view sid,
                                       const std::function<Status(Service&)>& change) {
  Service out;
  Status st = write([&](Conn& c) -> Status {
    auto found = selectOne<Service>(
        c,
        "SELECT " + kServiceCols + " FROM services WHERE sid = $1 AND account_sid = $2 FOR UPDATE",
        Params().text(sid).text(account_sid), readService);
    if (!found) return fail(found.error());
    if (!*found) return fail(Error::notFound());
    out = std::move(**found);
    if (auto ch = change(out); !ch) return ch;
    return run(c, "UPDATE services SET settings = $1, date_updated = $2 WHERE sid = $3",
               Params().text(encodeSettings(out.settings)).integer(out.date_updated).text(sid));
  });
  if (!st) return fail(st.error());
  return out;
}

Status PgStore::deleteService(std::string_view account_sid, std::string_view sid) {
  return write([&](Conn& c) -> Status {
    auto n = change(c, "DELETE FROM services WHERE sid = $1 AND account_sid = $2",
                    Params().text(sid).text(account_sid));
    if (!n) return fail(n.error());
    if (*n == 0) return fail(Error::notFound());
    for (const char* sql :
         {"DELETE FROM verifications WHERE service_sid = $1",
          "DELETE FROM rate_events WHERE bucket_sid IN (SELECT sid FROM buckets WHERE service_sid "
          "= $1)",
          "DELETE FROM buckets WHERE service_sid = $1",
          "DELETE FROM rate_limits WHERE service_sid = $1",
          "DELETE FROM messaging_configs WHERE service_sid = $1"})
      if (auto st = run(c, sql, Params().text(sid)); !st) return st;
    return {};
  });
}

// ---- verifications --------------------------------------------------------------------------

namespace {

Result<std::optional<Verification>> selectVerification(Conn& c, const VerificationKey& key,
                                                       bool for_update) {
  const char* lock = for_update ? " FOR UPDATE" : "";
  if (!key.sid.empty())
    return selectOne<Verification>(c, kSelectVerificationBySid + lock,
                                   Params().text(key.sid).text(key.service_sid), readVerification);
  return selectOne<Verification>(c, kSelectLatestVerificationByTo + lock,
                                 Params().text(key.service_sid).text(key.to), readVerification);
}

// The lock every start and every change for one destination takes first.
Status lockDestination(Conn& c, const std::string& to) { return lockKey(c, "to:" + to); }

// Sliding-window counts, as in the SQLite store: a start is allowed when fewer than `max`
// starts of the same key were counted in the bucket during the last `interval` seconds. Every
// bucket and key is locked first (in one order, so that starts never wait in a cycle), so the
// count and the insert are atomic across nodes.
Status chargeBuckets(Conn& c, const std::vector<RateCharge>& charges, UnixTime now) {
  std::vector<std::string> keys;
  for (const auto& ch : charges) keys.push_back("bucket:" + ch.bucket_sid + ":" + ch.key);
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  for (const auto& k : keys)
    if (auto st = lockKey(c, k); !st) return st;
  for (const auto& ch : charges) {
    if (auto st = run(c, "DELETE FROM rate_events WHERE bucket_sid = $1 AND key = $2 AND t <= $3",
                      Params().text(ch.bucket_sid).text(ch.key).integer(now - ch.interval));
        !st)
      return st;
    auto r = c.query("SELECT COUNT(*), MIN(t) FROM rate_events WHERE bucket_sid = $1 AND key = $2",
                     Params().text(ch.bucket_sid).text(ch.key));
    if (!r) return fail(r.error());
    if (r->integer(0, 0) >= ch.max) {
      Error e = Error::of(ErrorKind::kRateLimited, "Too many requests");
      e.param = ch.rate_limit_name;
      e.retry_after = r->integer(0, 1) + ch.interval - now;
      return fail(e);
    }
  }
  for (const auto& ch : charges)
    if (auto st = run(c, "INSERT INTO rate_events(bucket_sid, key, t) VALUES($1, $2, $3)",
                      Params().text(ch.bucket_sid).text(ch.key).integer(now));
        !st)
      return st;
  return {};
}

Status countFraud(Conn& c, const std::string& account_sid, const std::string& prefix,
                  std::int64_t hour, int sends, int conversions) {
  return run(
      c,
      "INSERT INTO fraud_counts(account_sid, prefix, hour, sends, conversions) "
      "VALUES($1, $2, $3, $4, $5) ON CONFLICT(account_sid, prefix, hour) DO UPDATE SET "
      "sends = fraud_counts.sends + excluded.sends, "
      "conversions = fraud_counts.conversions + excluded.conversions",
      Params().text(account_sid).text(prefix).integer(hour).integer(sends).integer(conversions));
}

Result<std::pair<std::int64_t, std::int64_t>> fraudTotals(Conn& c, const std::string& account_sid,
                                                          const std::string& prefix,
                                                          std::int64_t from_hour) {
  auto r = c.query(
      "SELECT COALESCE(SUM(sends), 0), COALESCE(SUM(conversions), 0) FROM fraud_counts "
      "WHERE account_sid = $1 AND prefix = $2 AND hour >= $3",
      Params().text(account_sid).text(prefix).integer(from_hour));
  if (!r) return fail(r.error());
  return std::pair{r->integer(0, 0), r->integer(0, 1)};
}

// Fraud Guard for one sms start, as in the SQLite store. Returns the refusal when the prefix is
// (or now becomes) blocked; its writes (the counts, a new block) are part of the start's
// transaction.
Result<std::optional<Error>> checkFraud(Conn& c, const FraudCheck& f, UnixTime now) {
  const Error blocked =
      Error::of(ErrorKind::kFraudBlocked, "Verify Fraud Guard blocked messages to " + f.prefix +
                                              " (suspected SMS pumping); it lifts after 12 hours");
  {
    auto r =
        c.query("SELECT blocked_until FROM fraud_blocks WHERE account_sid = $1 AND prefix = $2",
                Params().text(f.account_sid).text(f.prefix));
    if (!r) return fail(r.error());
    if (!r->empty() && r->integer(0, 0) > now) return std::optional<Error>(blocked);
  }
  const std::int64_t hour = now / 3600;
  if (auto st = countFraud(c, f.account_sid, f.prefix, hour, 1, 0); !st) return fail(st.error());
  if (auto st = countFraud(c, f.account_sid, "", hour, 1, 0); !st) return fail(st.error());
  auto prefix = fraudTotals(c, f.account_sid, f.prefix, hour - f.window_hours + 1);
  if (!prefix) return fail(prefix.error());
  auto [sends, conversions] = *prefix;
  if (sends - conversions < f.min_unconverted) return std::optional<Error>();
  auto account = fraudTotals(c, f.account_sid, "", hour - f.baseline_hours + 1);
  if (!account) return fail(account.error());
  // The account's own conversion rate, counting this prefix's traffic out of it; with too
  // little history, assume half of all codes are used.
  std::int64_t base_sends = account->first - sends,
               base_conversions = account->second - conversions;
  double baseline = base_sends >= 20 ? static_cast<double>(base_conversions) / base_sends : 0.5;
  double rate = static_cast<double>(conversions) / sends;
  if (rate >= f.factor * baseline) return std::optional<Error>();
  if (auto st = run(c,
                    "INSERT INTO fraud_blocks(account_sid, prefix, blocked_until, date_created, "
                    "sends, conversions) VALUES($1, $2, $3, $4, $5, $6) "
                    "ON CONFLICT(account_sid, prefix) DO UPDATE SET "
                    "blocked_until = excluded.blocked_until, date_created = excluded.date_created, "
                    "sends = excluded.sends, conversions = excluded.conversions",
                    Params()
                        .text(f.account_sid)
                        .text(f.prefix)
                        .integer(now + f.block_seconds)
                        .integer(now)
                        .integer(sends)
                        .integer(conversions));
      !st)
    return fail(st.error());
  return std::optional<Error>(blocked);
}

// Sends to (service, to) within the window, across verifications, read from the send attempts
// of the verifications created in it.
Status checkDestinationSends(Conn& c, const std::string& service_sid, const std::string& to,
                             UnixTime now, const StartGuards& g) {
  const UnixTime since = now - g.destination_window;
  auto r = c.query(
      "SELECT send_attempts FROM verifications WHERE service_sid = $1 AND to_ = $2 AND "
      "date_created > $3",
      Params().text(service_sid).text(to).integer(since));
  if (!r) return fail(r.error());
  std::vector<UnixTime> times;
  for (int i = 0; i < r->size(); ++i)
    for (const auto& a : decodeAttempts(r->text(i, 0)))
      if (a.time > since) times.push_back(a.time);
  if (static_cast<int>(times.size()) < g.max_destination_sends) return {};
  std::sort(times.begin(), times.end());
  Error e = Error::of(ErrorKind::kMaxSendAttempts, "Max send attempts reached");
  // Room again when the send `max` places from the newest leaves the window.
  e.retry_after = times[times.size() - g.max_destination_sends] + g.destination_window - now;
  return fail(e);
}

Status insertMessage(Conn& c, const OutboxMessage& m) {
  return run(c,
             "INSERT INTO outbox(sid, account_sid, service_sid, verification_sid, to_, channel, "
             "body, date_created, code) VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9)",
             Params()
                 .text(m.sid)
                 .text(m.account_sid)
                 .text(m.service_sid)
                 .text(m.verification_sid)
                 .text(m.to)
                 .text(m.channel)
                 .text(m.body)
                 .integer(m.date_created)
                 .text(m.code));
}

Status insertAttempt(Conn& c, const DeliveryAttempt& a) {
  static const std::string sql =
      "INSERT INTO attempts(" + kAttemptCols +
      ") VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, "
      "$19, $20, $21, $22)";
  Params p;
  p.text(a.sid).text(a.account_sid).text(a.service_sid).text(a.verification_sid);
  p.text(a.channel).text(a.to).text(a.country).text(a.locale);
  p.integer(a.code_length).bytes(a.payload_sealed).text(a.message_status);
  p.text(a.provider).text(a.provider_message_id).text(a.error_code);
  p.text(a.error_message).integer(a.tries).integer(a.provider_tries);
  p.boolean(a.outcome_unknown).integer(a.next_try_ms).text(a.lease_token);
  p.integer(a.date_created).integer(a.date_updated);
  return run(c, sql, p);
}

}  // namespace

void PgStore::startAsync(
    std::string service_sid, std::string to, UnixTime now, StartGuards guards,
    std::function<Result<StartWrite>(const std::optional<Verification>&)> decide,
    Completion<Verification> done) {
  submit([service_sid = std::move(service_sid), to = std::move(to), now, guards = std::move(guards),
          decide = std::move(decide), done = std::move(done)](Conn* conn) {
    if (!conn) return done(fail(Error::unavailable("store is shutting down")));
    Verification out;
    // A refusal that must still commit (a new Fraud Guard block) is returned through here.
    std::optional<Error> refusal;
    Status st = transact(*conn, [&](Conn& c) -> Status {
      out = Verification{};
      refusal.reset();
      // Every start for one number, on any node, one after another.
      if (auto s = lockDestination(c, to); !s) return s;
      // Fraud Guard first: its refusal commits (a new block must persist), so nothing else may
      // have been written by then. Any later refusal rolls back its count too.
      if (guards.fraud) {
        auto verdict = checkFraud(c, *guards.fraud, now);
        if (!verdict) return fail(verdict.error());
        if (*verdict) {
          refusal = **verdict;
          return {};
        }
      }
      if (auto s = chargeBuckets(c, guards.charges, now); !s) return s;
      if (guards.max_destination_sends > 0)
        if (auto s = checkDestinationSends(c, service_sid, to, now, guards); !s) return s;
      auto pending = selectOne<Verification>(c, kSelectPendingVerification,
                                             Params().text(service_sid).text(to).integer(now),
                                             readVerification);
      if (!pending) return fail(pending.error());
      if (!*pending && guards.max_pending_per_number > 0) {
        auto n = scalar(c,
                        "SELECT COUNT(*) FROM verifications WHERE to_ = $1 AND account_sid = $2 "
                        "AND status = 'pending' AND expires_at > $3",
                        Params().text(to).text(guards.account_sid).integer(now));
        if (!n) return fail(n.error());
        if (*n >= guards.max_pending_per_number)
          return fail(Error::of(ErrorKind::kTooManyPending,
                                "Too many concurrent requests for phone number " + to));
      }
      auto w = decide(*pending);
      if (!w) return fail(w.error());
      const Verification& v = w->verification;
      if (w->is_new) {
        Params p;
        p.text(v.sid).text(v.service_sid).text(v.account_sid).text(v.to);
        p.text(v.channel).text(v.status).bytes(v.code_hash).bytes(v.code_seed);
        p.integer(v.code_length).integer(v.check_attempts).optText(v.amount).optText(v.payee);
        p.text(encodeAttempts(v.send_attempts)).integer(v.date_created).integer(v.date_updated);
        p.integer(v.expires_at).optText(v.fraud_prefix);
        if (auto s = run(c, kInsertVerification, p); !s) return s;
      } else {
        Params p;
        p.text(v.channel).bytes(v.code_hash).bytes(v.code_seed);
        p.text(encodeAttempts(v.send_attempts)).integer(v.date_updated).text(v.sid);
        if (auto s = run(c,
                         "UPDATE verifications SET channel = $1, code_hash = $2, code_seed = $3, "
                         "send_attempts = $4, date_updated = $5 WHERE sid = $6",
                         p);
            !s)
          return s;
      }
      if (w->message)
        if (auto s = insertMessage(c, *w->message); !s) return s;
      if (w->attempt)
        if (auto s = insertAttempt(c, *w->attempt); !s) return s;
      out = v;
      return {};
    });
    if (!st) return done(fail(st.error()));
    if (refusal) return done(fail(*refusal));
    done(std::move(out));
  });
}

Result<std::optional<Verification>> PgStore::getVerification(const VerificationKey& key) {
  return read<std::optional<Verification>>(
      [&](Conn& c) { return selectVerification(c, key, false); });
}

void PgStore::mutateAsync(VerificationKey key,
                          std::function<Result<Verification>(const Verification&)> change,
                          Completion<Verification> done) {
  submit([key = std::move(key), change = std::move(change), done = std::move(done)](Conn* conn) {
    if (!conn) return done(fail(Error::unavailable("store is shutting down")));
    Verification out;
    Status st = transact(*conn, [&](Conn& c) -> Status {
      // The destination's lock first, as starts take it: a start and a check of one number
      // then never wait on each other's rows in a cycle. A verification's `To` never changes.
      std::string to = key.to;
      if (!key.sid.empty()) {
        auto found = selectOne<std::string>(
            c, "SELECT to_ FROM verifications WHERE sid = $1 AND service_sid = $2",
            Params().text(key.sid).text(key.service_sid),
            [](const Rows& r, int i) { return r.text(i, 0); });
        if (!found) return fail(found.error());
        if (!*found) return fail(Error::notFound());
        to = **found;
      }
      if (auto s = lockDestination(c, to); !s) return s;
      auto found = selectVerification(c, key, true);
      if (!found) return fail(found.error());
      if (!*found) return fail(Error::notFound());
      auto changed = change(**found);
      if (!changed) return fail(changed.error());
      out = std::move(*changed);
      if (out.status == status::kApproved && (*found)->status != status::kApproved &&
          out.fraud_prefix) {
        // A conversion, counted in the hour the code was sent.
        const std::int64_t hour = out.date_created / 3600;
        if (auto s = countFraud(c, out.account_sid, *out.fraud_prefix, hour, 0, 1); !s) return s;
        if (auto s = countFraud(c, out.account_sid, "", hour, 0, 1); !s) return s;
      }
      return run(c,
                 "UPDATE verifications SET status = $1, check_attempts = $2, date_updated = $3 "
                 "WHERE sid = $4",
                 Params()
                     .text(out.status)
                     .integer(out.check_attempts)
                     .integer(out.date_updated)
                     .text(out.sid));
    });
    if (!st) return done(fail(st.error()));
    done(std::move(out));
  });
}

// ---- rate limits ----------------------------------------------------------------------------

Status PgStore::createRateLimit(const RateLimit& r, int max_per_service) {
  return write([&](Conn& c) -> Status {
    if (auto st = lockParent(c, "services", r.service_sid); !st) return st;
    auto n = scalar(c, "SELECT COUNT(*) FROM rate_limits WHERE service_sid = $1",
                    Params().text(r.service_sid));
    if (!n) return fail(n.error());
    if (*n >= max_per_service)
      return fail(Error::of(ErrorKind::kTooManyRateLimits, "Max number of Rate Limits reached (" +
                                                               std::to_string(max_per_service) +
                                                               " per Service)"));
    auto dup = c.query("SELECT 1 FROM rate_limits WHERE service_sid = $1 AND unique_name = $2",
                       Params().text(r.service_sid).text(r.unique_name));
    if (!dup) return fail(dup.error());
    if (!dup->empty())
      return fail(Error::of(ErrorKind::kDuplicateRateLimit,
                            "A Rate Limit with UniqueName " + r.unique_name + " already exists"));
    return run(c,
               "INSERT INTO rate_limits(sid, service_sid, account_sid, unique_name, description, "
               "date_created, date_updated) VALUES($1, $2, $3, $4, $5, $6, $7)",
               Params()
                   .text(r.sid)
                   .text(r.service_sid)
                   .text(r.account_sid)
                   .text(r.unique_name)
                   .optText(r.description)
                   .integer(r.date_created)
                   .integer(r.date_updated));
  });
}

Result<std::optional<RateLimit>> PgStore::getRateLimit(std::string_view service_sid,
                                                       std::string_view sid) {
  return read<std::optional<RateLimit>>([&](Conn& c) {
    return selectOne<RateLimit>(
        c, "SELECT " + kRateLimitCols + " FROM rate_limits WHERE sid = $1 AND service_sid = $2",
        Params().text(sid).text(service_sid), readRateLimit);
  });
}

Result<Page<RateLimit>> PgStore::listRateLimits(std::string_view service_sid, PageCursor cursor,
                                                int page_size) {
  return read<Page<RateLimit>>([&](Conn& c) {
    return pageQuery<RateLimit>(c, kRateLimitCols, "rate_limits", "service_sid = $1",
                                Params().text(service_sid), true, cursor, page_size, readRateLimit);
  });
}

Result<RateLimit> PgStore::updateRateLimit(std::string_view service_sid, std::string_view sid,
                                           std::optional<std::string> description, UnixTime now) {
  RateLimit out;
  Status st = write([&](Conn& c) -> Status {
    auto found =
        selectOne<RateLimit>(c,
                             "SELECT " + kRateLimitCols +
                                 " FROM rate_limits WHERE sid = $1 AND service_sid = $2 FOR UPDATE",
                             Params().text(sid).text(service_sid), readRateLimit);
    if (!found) return fail(found.error());
    if (!*found) return fail(Error::notFound());
    out = std::move(**found);
    if (description) out.description = description->empty() ? std::nullopt : description;
    out.date_updated = now;
    return run(c, "UPDATE rate_limits SET description = $1, date_updated = $2 WHERE sid = $3",
               Params().optText(out.description).integer(now).text(sid));
  });
  if (!st) return fail(st.error());
  return out;
}

Status PgStore::deleteRateLimit(std::string_view service_sid, std::string_view sid) {
  return write([&](Conn& c) -> Status {
    auto n = change(c, "DELETE FROM rate_limits WHERE sid = $1 AND service_sid = $2",
                    Params().text(sid).text(service_sid));
    if (!n) return fail(n.error());
    if (*n == 0) return fail(Error::notFound());
    if (auto st = run(c,
                      "DELETE FROM rate_events WHERE bucket_sid IN "
                      "(SELECT sid FROM buckets WHERE rate_limit_sid = $1)",
                      Params().text(sid));
        !st)
      return st;
    return run(c, "DELETE FROM buckets WHERE rate_limit_sid = $1", Params().text(sid));
  });
}

Status PgStore::createBucket(const Bucket& b, int max_per_limit) {
  return write([&](Conn& c) -> Status {
    if (auto st = lockParent(c, "rate_limits", b.rate_limit_sid); !st) return st;
    auto n = scalar(c, "SELECT COUNT(*) FROM buckets WHERE rate_limit_sid = $1",
                    Params().text(b.rate_limit_sid));
    if (!n) return fail(n.error());
    if (*n >= max_per_limit)
      return fail(Error::of(
          ErrorKind::kTooManyBuckets,
          "Max number of Buckets reached (" + std::to_string(max_per_limit) + " per Rate Limit)"));
    auto dup = c.query("SELECT 1 FROM buckets WHERE rate_limit_sid = $1 AND \"interval\" = $2",
                       Params().text(b.rate_limit_sid).integer(b.interval));
    if (!dup) return fail(dup.error());
    if (!dup->empty())
      return fail(Error::of(ErrorKind::kDuplicateBucket,
                            "A Bucket with Interval " + std::to_string(b.interval) +
                                " already exists for this Rate Limit"));
    return run(c,
               "INSERT INTO buckets(sid, rate_limit_sid, service_sid, account_sid, max, "
               "\"interval\", date_created, date_updated) VALUES($1, $2, $3, $4, $5, $6, $7, $8)",
               Params()
                   .text(b.sid)
                   .text(b.rate_limit_sid)
                   .text(b.service_sid)
                   .text(b.account_sid)
                   .integer(b.max)
                   .integer(b.interval)
                   .integer(b.date_created)
                   .integer(b.date_updated));
  });
}

Result<std::optional<Bucket>> PgStore::getBucket(std::string_view rate_limit_sid,
                                                 std::string_view sid) {
  return read<std::optional<Bucket>>([&](Conn& c) {
    return selectOne<Bucket>(
        c, "SELECT " + kBucketCols + " FROM buckets WHERE sid = $1 AND rate_limit_sid = $2",
        Params().text(sid).text(rate_limit_sid), readBucket);
  });
}

Result<Page<Bucket>> PgStore::listBuckets(std::string_view rate_limit_sid, PageCursor cursor,
                                          int page_size) {
  return read<Page<Bucket>>([&](Conn& c) {
    return pageQuery<Bucket>(c, kBucketCols, "buckets", "rate_limit_sid = $1",
                             Params().text(rate_limit_sid), true, cursor, page_size, readBucket);
  });
}

Result<Bucket> PgStore::updateBucket(std::string_view rate_limit_sid, std::string_view sid,
                                     std::optional<int> max, std::optional<int> interval,
                                     UnixTime now) {
  Bucket out;
  Status st = write([&](Conn& c) -> Status {
    // The rate limit's lock serialises this with creates that check the same intervals.
    if (auto s = lockParent(c, "rate_limits", rate_limit_sid); !s) return s;
    auto found = selectOne<Bucket>(
        c,
        "SELECT " + kBucketCols + " FROM buckets WHERE sid = $1 AND rate_limit_sid = $2 FOR UPDATE",
        Params().text(sid).text(rate_limit_sid), readBucket);
    if (!found) return fail(found.error());
    if (!*found) return fail(Error::notFound());
    out = std::move(**found);
    if (interval && *interval != out.interval) {
      auto dup = c.query("SELECT 1 FROM buckets WHERE rate_limit_sid = $1 AND \"interval\" = $2",
                         Params().text(rate_limit_sid).integer(*interval));
      if (!dup) return fail(dup.error());
      if (!dup->empty())
        return fail(Error::of(ErrorKind::kDuplicateBucket,
                              "A Bucket with Interval " + std::to_string(*interval) +
                                  " already exists for this Rate Limit"));
      out.interval = *interval;
    }
    if (max) out.max = *max;
    out.date_updated = now;
    return run(c,
               "UPDATE buckets SET max = $1, \"interval\" = $2, date_updated = $3 WHERE sid = $4",
               Params().integer(out.max).integer(out.interval).integer(now).text(sid));
  });
  if (!st) return fail(st.error());
  return out;
}

Status PgStore::deleteBucket(std::string_view rate_limit_sid, std::string_view sid) {
  return write([&](Conn& c) -> Status {
    auto n = change(c, "DELETE FROM buckets WHERE sid = $1 AND rate_limit_sid = $2",
                    Params().text(sid).text(rate_limit_sid));
    if (!n) return fail(n.error());
    if (*n == 0) return fail(Error::notFound());
    return run(c, "DELETE FROM rate_events WHERE bucket_sid = $1", Params().text(sid));
  });
}

Result<std::vector<std::pair<std::string, std::optional<Bucket>>>> PgStore::rateLimitsOfService(
    std::string_view service_sid) {
  using Out = std::vector<std::pair<std::string, std::optional<Bucket>>>;
  return read<Out>([&](Conn& c) -> Result<Out> {
    // The bucket's columns as readBucket expects them, then the limit's name; a limit without
    // buckets comes once, with NULL bucket columns.
    auto r = c.query(
        "SELECT b.seq, b.sid, b.rate_limit_sid, b.service_sid, b.account_sid, b.max, "
        "b.\"interval\", b.date_created, b.date_updated, r.unique_name FROM rate_limits r LEFT "
        "JOIN buckets b ON b.rate_limit_sid = r.sid WHERE r.service_sid = $1 ORDER BY r.seq, "
        "b.seq",
        Params().text(service_sid));
    if (!r) return fail(r.error());
    Out out;
    for (int i = 0; i < r->size(); ++i) {
      std::optional<Bucket> bucket;
      if (!r->isNull(i, 1)) bucket = readBucket(*r, i);
      out.emplace_back(r->text(i, 9), std::move(bucket));
    }
    return out;
  });
}

// ---- safe list and geo permissions ---------------------------------------------------------

Result<SafeNumber> PgStore::addSafeNumber(const SafeNumber& entry) {
  SafeNumber out = entry;
  Status st = write([&](Conn& c) -> Status {
    if (auto ins = run(c,
                       "INSERT INTO safe_numbers(account_sid, phone_number, sid, date_created) "
                       "VALUES($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                       Params()
                           .text(entry.account_sid)
                           .text(entry.phone_number)
                           .text(entry.sid)
                           .integer(entry.date_created));
        !ins)
      return ins;
    auto r = c.query(
        "SELECT sid, date_created FROM safe_numbers WHERE account_sid = $1 AND phone_number = $2",
        Params().text(entry.account_sid).text(entry.phone_number));
    if (!r) return fail(r.error());
    if (r->empty()) return fail(Error::unavailable("postgres: safe number vanished"));
    out.sid = r->text(0, 0);
    out.date_created = r->integer(0, 1);
    return {};
  });
  if (!st) return fail(st.error());
  return out;
}

Result<std::optional<SafeNumber>> PgStore::getSafeNumber(std::string_view account_sid,
                                                         std::string_view phone_number) {
  return read<std::optional<SafeNumber>>([&](Conn& c) {
    return selectOne<SafeNumber>(
        c,
        "SELECT sid, date_created FROM safe_numbers WHERE account_sid = $1 AND phone_number = $2",
        Params().text(account_sid).text(phone_number), [&](const Rows& r, int i) {
          return SafeNumber{r.text(i, 0), std::string(account_sid), std::string(phone_number),
                            r.integer(i, 1)};
        });
  });
}

Status PgStore::removeSafeNumber(std::string_view account_sid, std::string_view phone_number) {
  return write([&](Conn& c) -> Status {
    auto n = change(c, "DELETE FROM safe_numbers WHERE account_sid = $1 AND phone_number = $2",
                    Params().text(account_sid).text(phone_number));
    if (!n) return fail(n.error());
    if (*n == 0) return fail(Error::notFound());
    return {};
  });
}

Status PgStore::setGeoPermission(std::string_view account_sid, const GeoPermission& p) {
  return write([&](Conn& c) {
    return run(c,
               "INSERT INTO geo_permissions(account_sid, channel, country, allowed, date_updated) "
               "VALUES($1, $2, $3, $4, $5) ON CONFLICT(account_sid, channel, country) DO UPDATE "
               "SET allowed = excluded.allowed, date_updated = excluded.date_updated",
               Params()
                   .text(account_sid)
                   .text(p.channel)
                   .text(p.country)
                   .boolean(p.allowed)
                   .integer(p.date_updated));
  });
}

Result<std::vector<GeoPermission>> PgStore::geoPermissions(std::string_view account_sid) {
  using Out = std::vector<GeoPermission>;
  return read<Out>([&](Conn& c) -> Result<Out> {
    // Byte order, as SQLite sorts, whatever the database's collation.
    auto r = c.query(
        "SELECT channel, country, allowed, date_updated FROM geo_permissions WHERE account_sid = "
        "$1 ORDER BY channel COLLATE \"C\", country COLLATE \"C\"",
        Params().text(account_sid));
    if (!r) return fail(r.error());
    Out out;
    for (int i = 0; i < r->size(); ++i)
      out.push_back(
          GeoPermission{r->text(i, 0), r->text(i, 1), r->boolean(i, 2), r->integer(i, 3)});
    return out;
  });
}

Result<std::vector<FraudBlock>> PgStore::fraudBlocks(std::string_view account_sid, UnixTime now) {
  using Out = std::vector<FraudBlock>;
  return read<Out>([&](Conn& c) -> Result<Out> {
    auto r = c.query(
        "SELECT prefix, blocked_until, date_created, sends, conversions FROM fraud_blocks WHERE "
        "account_sid = $1 AND blocked_until > $2 ORDER BY date_created, prefix COLLATE \"C\"",
        Params().text(account_sid).integer(now));
    if (!r) return fail(r.error());
    Out out;
    for (int i = 0; i < r->size(); ++i)
      out.push_back(FraudBlock{r->text(i, 0), r->integer(i, 1), r->integer(i, 2), r->integer(i, 3),
                               r->integer(i, 4)});
    return out;
  });
}

Status PgStore::liftFraudBlock(std::string_view account_sid, std::string_view prefix) {
  return write([&](Conn& c) -> Status {
    auto n = change(c, "DELETE FROM fraud_blocks WHERE account_sid = $1 AND prefix = $2",
                    Params().text(account_sid).text(prefix));
    if (!n) return fail(n.error());
    if (*n == 0) return fail(Error::notFound());
    // Start the prefix afresh, or the next send would block it again at once.
    return run(c, "DELETE FROM fraud_counts WHERE account_sid = $1 AND prefix = $2",
               Params().text(account_sid).text(prefix));
  });
}

// ---- dev outbox -----------------------------------------------------------------------------

Result<Page<OutboxMessage>> PgStore::listMessages(std::string_view account_sid, std::string_view to,
                                                  PageCursor cursor, int page_size) {
  return read<Page<OutboxMessage>>([&](Conn& c) {
    auto readRow = [](const Rows& r, int i) {
      return OutboxMessage{r.text(i, 1), r.text(i, 2), r.text(i, 3),    r.text(i, 4), r.text(i, 5),
                           r.text(i, 6), r.text(i, 7), r.integer(i, 8), r.text(i, 9)};
    };
    const std::string cols =
        "seq, sid, account_sid, service_sid, verification_sid, to_, channel, body, date_created, "
        "code";
    if (to.empty())
      return pageQuery<OutboxMessage>(c, cols, "outbox", "account_sid = $1",
                                      Params().text(account_sid), false, cursor, page_size,
                                      readRow);
    return pageQuery<OutboxMessage>(c, cols, "outbox", "account_sid = $1 AND to_ = $2",
                                    Params().text(account_sid).text(to), false, cursor, page_size,
                                    readRow);
  });
}

// ---- delivery attempts ---------------------------------------------------------------------

namespace {

// The WHERE clause and its parameters for a filter.
struct AttemptWhere {
  std::string sql;
  Params params;
};

AttemptWhere attemptWhere(std::string_view account_sid, const AttemptFilter& f) {
  AttemptWhere w;
  auto next = [&w] { return "$" + std::to_string(w.params.size() + 1); };
  auto text = [&](const std::string& clause, const std::string& v) {
    w.sql += " AND " + clause + " " + next() + "::text";
    w.params.text(v);
  };
  auto number = [&](const std::string& clause, std::int64_t v) {
    w.sql += " AND " + clause + " " + next() + "::bigint";
    w.params.integer(v);
  };
  w.sql = "a.account_sid = $1";
  w.params.text(account_sid);
  if (!f.service_sid.empty()) text("a.service_sid =", f.service_sid);
  if (!f.verification_sid.empty()) text("a.verification_sid =", f.verification_sid);
  if (!f.channel.empty()) text("a.channel =", f.channel);
  if (!f.to.empty()) text("a.to_ =", f.to);
  if (!f.country.empty()) text("a.country =", f.country);
  if (!f.destination_prefix.empty())
    text("substr(a.to_, 1, length(" + next() + "::text)) =", f.destination_prefix);
  if (f.created_after > 0) number("a.date_created >=", f.created_after);
  if (f.created_before > 0) number("a.date_created <=", f.created_before);
  if (f.converted)
    w.sql += std::string(" AND ") + (*f.converted ? "" : "NOT ") +
             "EXISTS(SELECT 1 FROM verifications v WHERE v.sid = a.verification_sid AND "
             "v.status = 'approved')";
  return w;
}

}  // namespace

Result<bool> PgStore::anyAttemptDue(std::int64_t now_ms) {
  return read<bool>([&](Conn& c) -> Result<bool> {
    auto r = c.query(
        "SELECT 1 FROM attempts WHERE message_status IN ('queued', 'sending') AND next_try_ms "
        "<= $1 LIMIT 1",
        Params().integer(now_ms));
    if (!r) return fail(r.error());
    return !r->empty();
  });
}

Result<std::vector<DeliveryAttempt>> PgStore::claimAttempts(std::int64_t now_ms,
                                                            std::int64_t lease_ms, int limit,
                                                            const std::string& lease_token) {
  std::vector<DeliveryAttempt> claimed;
  Status st = write([&](Conn& c) -> Status {
    claimed.clear();
    // Rows another node is claiming right now are skipped, not waited for: each claim takes
    // its own attempts, and none is taken twice.
    auto r = c.query(kAttemptSelect +
                         " WHERE a.message_status IN ('queued', 'sending') AND a.next_try_ms <= $1 "
                         "ORDER BY a.next_try_ms, a.seq LIMIT $2 FOR UPDATE OF a SKIP LOCKED",
                     Params().integer(now_ms).integer(limit));
    if (!r) return fail(r.error());
    for (int i = 0; i < r->size(); ++i) claimed.push_back(readAttempt(*r, i, 1));
    for (auto& a : claimed) {
      // A lease that ran out means its sender died mid-try: that try may have been delivered.
      if (a.message_status == message_status::kSending) a.outcome_unknown = true;
      a.message_status = message_status::kSending;
      a.lease_token = lease_token;
      a.lease_until_ms = now_ms + lease_ms;
      if (auto s = run(c,
                       "UPDATE attempts SET message_status = 'sending', lease_token = $1, "
                       "next_try_ms = $2, outcome_unknown = $3 WHERE sid = $4",
                       Params()
                           .text(lease_token)
                           .integer(a.lease_until_ms)
                           .boolean(a.outcome_unknown)
                           .text(a.sid));
          !s)
        return s;
    }
    return {};
  });
  if (!st) return fail(st.error());
  return claimed;
}

Status PgStore::finishTry(const DeliveryAttempt& a) {
  return write([&](Conn& c) -> Status {
    auto r = c.query(
        "SELECT message_status, lease_token, error_code, error_message FROM attempts WHERE sid = "
        "$1 FOR UPDATE",
        Params().text(a.sid));
    if (!r) return fail(r.error());
    if (r->empty()) return {};
    const std::string current = r->text(0, 0);
    // Lost the lease (another worker took over): its outcome is the one that counts.
    if (r->text(0, 1) != a.lease_token) return {};
    // A receipt may have arrived while the provider call was still returning: it is further
    // along than the try's own outcome, so it stays, with its error.
    std::string status = a.message_status;
    std::string error_code = a.error_code, error_message = a.error_message;
    if (current != message_status::kSending && statusRank(current) > statusRank(status)) {
      status = current;
      error_code = r->text(0, 2);
      error_message = r->text(0, 3);
    }
    return run(c,
               "UPDATE attempts SET message_status = $1, provider = $2, provider_message_id = $3, "
               "error_code = $4, error_message = $5, tries = $6, provider_tries = $7, "
               "outcome_unknown = $8, next_try_ms = $9, lease_token = '', date_updated = $10 "
               "WHERE sid = $11",
               Params()
                   .text(status)
                   .text(a.provider)
                   .text(a.provider_message_id)
                   .text(error_code)
                   .text(error_message)
                   .integer(a.tries)
                   .integer(a.provider_tries)
                   .boolean(a.outcome_unknown)
                   .integer(a.next_try_ms)
                   .integer(a.date_updated)
                   .text(a.sid));
  });
}

Status PgStore::applyReceipt(std::string_view sid, std::string_view status,
                             std::string_view error_code, std::string_view error_message,
                             UnixTime now) {
  return write([&](Conn& c) -> Status {
    auto r = c.query("SELECT message_status FROM attempts WHERE sid = $1 FOR UPDATE",
                     Params().text(sid));
    if (!r) return fail(r.error());
    if (r->empty()) return fail(Error::notFound());
    const std::string current = r->text(0, 0);
    // Never backwards; a final status is final. While a try is in flight (sending) the
    // receipt is kept and the try's outcome will not lower it.
    if (statusRank(current) >= 3 || statusRank(status) <= statusRank(current)) {
      if (current != message_status::kSending) return {};
    }
    return run(c,
               "UPDATE attempts SET message_status = $1, error_code = CASE WHEN $2::text = '' "
               "THEN error_code ELSE $2::text END, error_message = CASE WHEN $3::text = '' THEN "
               "error_message ELSE $3::text END, date_updated = $4 WHERE sid = $5",
               Params().text(status).text(error_code).text(error_message).integer(now).text(sid));
  });
}

Result<std::optional<DeliveryAttempt>> PgStore::getAttempt(std::string_view account_sid,
                                                           std::string_view sid) {
  return read<std::optional<DeliveryAttempt>>([&](Conn& c) {
    return selectOne<DeliveryAttempt>(c,
                                      kAttemptSelect + " WHERE a.sid = $1 AND a.account_sid = $2",
                                      Params().text(sid).text(account_sid),
                                      [](const Rows& r, int i) { return readAttempt(r, i, 1); });
  });
}

Result<Page<DeliveryAttempt>> PgStore::listAttempts(std::string_view account_sid,
                                                    const AttemptFilter& filter, PageCursor cursor,
                                                    int page_size) {
  return read<Page<DeliveryAttempt>>([&](Conn& c) {
    AttemptWhere w = attemptWhere(account_sid, filter);
    return pageQuery<DeliveryAttempt>(c, kAttemptSelectCols, "attempts a", w.sql, w.params, false,
                                      cursor, page_size,
                                      [](const Rows& r, int i) { return readAttempt(r, i, 1); });
  });
}

Result<AttemptSummary> PgStore::summarizeAttempts(std::string_view account_sid,
                                                  const AttemptFilter& filter) {
  return read<AttemptSummary>([&](Conn& c) -> Result<AttemptSummary> {
    AttemptWhere w = attemptWhere(account_sid, filter);
    auto r = c.query(
        "SELECT COUNT(*), COUNT(*) FILTER (WHERE EXISTS(SELECT 1 FROM verifications v WHERE "
        "v.sid = a.verification_sid AND v.status = 'approved')) FROM attempts a WHERE " +
            w.sql,
        w.params);
    if (!r) return fail(r.error());
    return AttemptSummary{r->integer(0, 0), r->integer(0, 1)};
  });
}

// ---- messaging configurations --------------------------------------------------------------

Status PgStore::createMessagingConfig(const MessagingConfiguration& m) {
  return write([&](Conn& c) -> Status {
    // The unique (service, country) decides between concurrent creates.
    auto n = change(c,
                    "INSERT INTO messaging_configs(account_sid, service_sid, country, "
                    "messaging_service_sid, date_created, date_updated) VALUES($1, $2, $3, $4, "
                    "$5, $6) ON CONFLICT(service_sid, country) DO NOTHING",
                    Params()
                        .text(m.account_sid)
                        .text(m.service_sid)
                        .text(m.country)
                        .text(m.messaging_service_sid)
                        .integer(m.date_created)
                        .integer(m.date_updated));
    if (!n) return fail(n.error());
    if (*n == 0)
      return fail(Error::of(ErrorKind::kDuplicateMessagingConfiguration,
                            "A Messaging Configuration already exists for country " + m.country));
    return {};
  });
}

Result<std::optional<MessagingConfiguration>> PgStore::getMessagingConfig(
    std::string_view service_sid, std::string_view country) {
  return read<std::optional<MessagingConfiguration>>([&](Conn& c) {
    return selectOne<MessagingConfiguration>(
        c, kSelectMessagingConfig, Params().text(service_sid).text(country), readMessagingConfig);
  });
}

Result<Page<MessagingConfiguration>> PgStore::listMessagingConfigs(std::string_view service_sid,
                                                                   PageCursor cursor,
                                                                   int page_size) {
  return read<Page<MessagingConfiguration>>([&](Conn& c) {
    return pageQuery<MessagingConfiguration>(c, kMessagingConfigCols, "messaging_configs",
                                             "service_sid = $1", Params().text(service_sid), true,
                                             cursor, page_size, readMessagingConfig);
  });
}

Result<MessagingConfiguration> PgStore::updateMessagingConfig(
    std::string_view service_sid, std::string_view country, std::string_view messaging_service_sid,
    UnixTime now) {
  MessagingConfiguration out;
  Status st = write([&](Conn& c) -> Status {
    auto found = selectOne<MessagingConfiguration>(
        c,
        "UPDATE messaging_configs SET messaging_service_sid = $1, date_updated = $2 WHERE "
        "service_sid = $3 AND country = $4 RETURNING " +
            kMessagingConfigCols,
        Params().text(messaging_service_sid).integer(now).text(service_sid).text(country),
        readMessagingConfig);
    if (!found) return fail(found.error());
    if (!*found) return fail(Error::notFound());
    out = **found;
    return {};
  });
  if (!st) return fail(st.error());
  return out;
}

Status PgStore::deleteMessagingConfig(std::string_view service_sid, std::string_view country) {
  return write([&](Conn& c) -> Status {
    auto n = change(c, "DELETE FROM messaging_configs WHERE service_sid = $1 AND country = $2",
                    Params().text(service_sid).text(country));
    if (!n) return fail(n.error());
    if (*n == 0) return fail(Error::notFound());
    return {};
  });
}

}  // namespace verifyd
