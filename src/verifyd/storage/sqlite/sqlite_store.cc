#include "verifyd/storage/sqlite/sqlite_store.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <semaphore>

#include "verifyd/storage/record_json.h"
#include "verifyd/storage/sqlite/sqlite_helpers.h"

namespace verifyd {

using storage::decodeAttempts;
using storage::decodeSettings;
using storage::encodeAttempts;
using storage::encodeSettings;

using sqlite::Db;
using sqlite::pageQuery;
using sqlite::Query;
using sqlite::selectOne;
using json = nlohmann::json;

namespace {

// Version 1 of the schema. Later versions append statements and bump PRAGMA user_version.
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE settings(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE accounts(
  sid TEXT PRIMARY KEY, friendly_name TEXT NOT NULL, auth_token_mac BLOB NOT NULL,
  auth_token_sealed BLOB NOT NULL, date_created INTEGER NOT NULL);
CREATE TABLE api_keys(
  sid TEXT PRIMARY KEY, account_sid TEXT NOT NULL REFERENCES accounts(sid),
  friendly_name TEXT NOT NULL, secret_mac BLOB NOT NULL, date_created INTEGER NOT NULL);
CREATE TABLE services(
  seq INTEGER PRIMARY KEY, sid TEXT NOT NULL UNIQUE, account_sid TEXT NOT NULL,
  settings TEXT NOT NULL, date_created INTEGER NOT NULL, date_updated INTEGER NOT NULL);
CREATE INDEX services_by_account ON services(account_sid, seq);
CREATE TABLE verifications(
  seq INTEGER PRIMARY KEY, sid TEXT NOT NULL UNIQUE, service_sid TEXT NOT NULL,
  account_sid TEXT NOT NULL, to_ TEXT NOT NULL, channel TEXT NOT NULL, status TEXT NOT NULL,
  code_hash BLOB NOT NULL, code_seed BLOB NOT NULL, code_length INTEGER NOT NULL,
  check_attempts INTEGER NOT NULL, amount TEXT, payee TEXT, send_attempts TEXT NOT NULL,
  date_created INTEGER NOT NULL, date_updated INTEGER NOT NULL, expires_at INTEGER NOT NULL);
CREATE INDEX verifications_by_to ON verifications(service_sid, to_, seq);
CREATE TABLE outbox(
  seq INTEGER PRIMARY KEY, sid TEXT NOT NULL UNIQUE, account_sid TEXT NOT NULL,
  service_sid TEXT NOT NULL, verification_sid TEXT NOT NULL, to_ TEXT NOT NULL,
  channel TEXT NOT NULL, body TEXT NOT NULL, date_created INTEGER NOT NULL);
CREATE INDEX outbox_by_account_to ON outbox(account_sid, to_, seq);
CREATE INDEX outbox_by_account ON outbox(account_sid, seq);
PRAGMA user_version = 1;
)sql";

// Version 2: programmable rate limits, their buckets, and the starts each bucket counted.
constexpr const char* kSchemaV2 = R"sql(
CREATE TABLE rate_limits(
  seq INTEGER PRIMARY KEY, sid TEXT NOT NULL UNIQUE, service_sid TEXT NOT NULL,
  account_sid TEXT NOT NULL, unique_name TEXT NOT NULL, description TEXT,
  date_created INTEGER NOT NULL, date_updated INTEGER NOT NULL, UNIQUE(service_sid, unique_name));
CREATE TABLE buckets(
  seq INTEGER PRIMARY KEY, sid TEXT NOT NULL UNIQUE, rate_limit_sid TEXT NOT NULL,
  service_sid TEXT NOT NULL, account_sid TEXT NOT NULL, max INTEGER NOT NULL,
  interval INTEGER NOT NULL, date_created INTEGER NOT NULL, date_updated INTEGER NOT NULL,
  UNIQUE(rate_limit_sid, interval));
CREATE TABLE rate_events(bucket_sid TEXT NOT NULL, key TEXT NOT NULL, t INTEGER NOT NULL);
CREATE INDEX rate_events_by_key ON rate_events(bucket_sid, key, t);
PRAGMA user_version = 2;
)sql";
// Version 3: Safe List numbers and geo permissions.
constexpr const char* kSchemaV3 = R"sql(
CREATE TABLE safe_numbers(
  account_sid TEXT NOT NULL, phone_number TEXT NOT NULL, sid TEXT NOT NULL UNIQUE,
  date_created INTEGER NOT NULL, PRIMARY KEY(account_sid, phone_number));
CREATE TABLE geo_permissions(
  account_sid TEXT NOT NULL, channel TEXT NOT NULL, country TEXT NOT NULL,
  allowed INTEGER NOT NULL, date_updated INTEGER NOT NULL,
  PRIMARY KEY(account_sid, channel, country));
PRAGMA user_version = 3;
)sql";
// Version 4: Fraud Guard's hourly counts per destination prefix (prefix '' = the account), its
// blocks, and the prefix each verification was counted under.
constexpr const char* kSchemaV4 = R"sql(
ALTER TABLE verifications ADD COLUMN fraud_prefix TEXT;
CREATE TABLE fraud_counts(
  account_sid TEXT NOT NULL, prefix TEXT NOT NULL, hour INTEGER NOT NULL,
  sends INTEGER NOT NULL, conversions INTEGER NOT NULL,
  PRIMARY KEY(account_sid, prefix, hour));
CREATE TABLE fraud_blocks(
  account_sid TEXT NOT NULL, prefix TEXT NOT NULL, blocked_until INTEGER NOT NULL,
  date_created INTEGER NOT NULL, sends INTEGER NOT NULL, conversions INTEGER NOT NULL,
  PRIMARY KEY(account_sid, prefix));
PRAGMA user_version = 4;
)sql";
// Version 5: the `To` index leads with `to_`, so that it serves lookups by service and `To`
// and the per-number count across an account's services.
constexpr const char* kSchemaV5 = R"sql(
DROP INDEX verifications_by_to;
CREATE INDEX verifications_by_to ON verifications(to_, service_sid, seq);
PRAGMA user_version = 5;
)sql";
// Version 6: delivery attempts (the durable outbox the dispatcher sends) and Messaging
// Configurations. An attempt is due when queued (or sending with an expired lease) and
// `next_try_ms` has come: one partial index serves the dispatcher's claims.
constexpr const char* kSchemaV6 = R"sql(
CREATE TABLE attempts(
  seq INTEGER PRIMARY KEY, sid TEXT NOT NULL UNIQUE, account_sid TEXT NOT NULL,
  service_sid TEXT NOT NULL, verification_sid TEXT NOT NULL, channel TEXT NOT NULL,
  to_ TEXT NOT NULL, country TEXT NOT NULL, locale TEXT NOT NULL, code_length INTEGER NOT NULL,
  payload BLOB NOT NULL, message_status TEXT NOT NULL, provider TEXT NOT NULL,
  provider_message_id TEXT NOT NULL, error_code TEXT NOT NULL, error_message TEXT NOT NULL,
  tries INTEGER NOT NULL, provider_tries INTEGER NOT NULL, outcome_unknown INTEGER NOT NULL,
  next_try_ms INTEGER NOT NULL, lease_token TEXT NOT NULL,
  date_created INTEGER NOT NULL, date_updated INTEGER NOT NULL);
ALTER TABLE outbox ADD COLUMN code TEXT NOT NULL DEFAULT '';
CREATE INDEX attempts_by_account ON attempts(account_sid, seq);
CREATE INDEX attempts_due ON attempts(next_try_ms) WHERE message_status IN ('queued', 'sending');
CREATE TABLE messaging_configs(
  seq INTEGER PRIMARY KEY, service_sid TEXT NOT NULL, account_sid TEXT NOT NULL,
  country TEXT NOT NULL, messaging_service_sid TEXT NOT NULL, date_created INTEGER NOT NULL,
  date_updated INTEGER NOT NULL, UNIQUE(service_sid, country));
PRAGMA user_version = 6;
)sql";
// Version 7: factors (TOTP and push) with their entities, challenges, access tokens, webhooks
// and the webhook deliveries (the outbox of events, claimed like delivery attempts).
constexpr const char* kSchemaV7 = R"sql(
CREATE TABLE entities(
  seq INTEGER PRIMARY KEY, sid TEXT NOT NULL UNIQUE, account_sid TEXT NOT NULL,
  service_sid TEXT NOT NULL, identity TEXT NOT NULL, date_created INTEGER NOT NULL,
  date_updated INTEGER NOT NULL, UNIQUE(service_sid, identity));
CREATE TABLE factors(
  seq INTEGER PRIMARY KEY, sid TEXT NOT NULL UNIQUE, account_sid TEXT NOT NULL,
  service_sid TEXT NOT NULL, entity_sid TEXT NOT NULL, identity TEXT NOT NULL,
  friendly_name TEXT NOT NULL, status TEXT NOT NULL, factor_type TEXT NOT NULL,
  totp_alg TEXT NOT NULL, totp_skew INTEGER NOT NULL, totp_code_length INTEGER NOT NULL,
  totp_time_step INTEGER NOT NULL, push_sdk_version TEXT NOT NULL, push_app_id TEXT NOT NULL,
  push_notification_platform TEXT NOT NULL, push_notification_token TEXT NOT NULL,
  metadata TEXT, secret_sealed BLOB NOT NULL, public_key TEXT NOT NULL,
  binding_alg TEXT NOT NULL, failed_attempts INTEGER NOT NULL, last_step INTEGER NOT NULL,
  date_created INTEGER NOT NULL, date_updated INTEGER NOT NULL);
CREATE INDEX factors_by_identity ON factors(service_sid, identity, seq);
CREATE INDEX factors_unverified ON factors(date_created) WHERE status = 'unverified';
CREATE TABLE challenges(
  seq INTEGER PRIMARY KEY, sid TEXT NOT NULL UNIQUE, account_sid TEXT NOT NULL,
  service_sid TEXT NOT NULL, entity_sid TEXT NOT NULL, identity TEXT NOT NULL,
  factor_sid TEXT NOT NULL, factor_type TEXT NOT NULL, status TEXT NOT NULL,
  responded_reason TEXT NOT NULL, details_message TEXT NOT NULL, details_fields TEXT NOT NULL,
  hidden_details TEXT, metadata TEXT, expiration_date INTEGER NOT NULL,
  date_responded INTEGER NOT NULL, failed_attempts INTEGER NOT NULL,
  date_created INTEGER NOT NULL, date_updated INTEGER NOT NULL);
CREATE INDEX challenges_by_identity ON challenges(service_sid, identity, seq);
CREATE INDEX challenges_by_factor ON challenges(factor_sid, seq);
CREATE TABLE access_tokens(
  seq INTEGER PRIMARY KEY, sid TEXT NOT NULL UNIQUE, account_sid TEXT NOT NULL,
  service_sid TEXT NOT NULL, entity_identity TEXT NOT NULL, factor_type TEXT NOT NULL,
  factor_friendly_name TEXT, token TEXT NOT NULL, ttl INTEGER NOT NULL,
  date_created INTEGER NOT NULL);
CREATE TABLE webhooks(
  seq INTEGER PRIMARY KEY, sid TEXT NOT NULL UNIQUE, account_sid TEXT NOT NULL,
  service_sid TEXT NOT NULL, friendly_name TEXT NOT NULL, event_types TEXT NOT NULL,
  status TEXT NOT NULL, version TEXT NOT NULL, webhook_url TEXT NOT NULL,
  webhook_method TEXT NOT NULL, date_created INTEGER NOT NULL, date_updated INTEGER NOT NULL);
CREATE INDEX webhooks_by_service ON webhooks(service_sid, seq);
CREATE TABLE webhook_deliveries(
  seq INTEGER PRIMARY KEY, sid TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,
  account_sid TEXT NOT NULL, service_sid TEXT NOT NULL, webhook_sid TEXT NOT NULL,
  url TEXT NOT NULL, body TEXT NOT NULL, status TEXT NOT NULL, tries INTEGER NOT NULL,
  error TEXT NOT NULL, next_try_ms INTEGER NOT NULL, lease_token TEXT NOT NULL,
  date_created INTEGER NOT NULL, date_updated INTEGER NOT NULL);
CREATE INDEX webhook_deliveries_by_service ON webhook_deliveries(service_sid, seq);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(next_try_ms)
  WHERE status IN ('queued', 'sending');
PRAGMA user_version = 7;
)sql";
constexpr int kSchemaVersion = 7;

constexpr const char* kServiceCols = "seq, sid, account_sid, settings, date_created, date_updated";

Service readService(const Query& q) {
  return Service{q.text(1), q.text(2), decodeSettings(q.text(3)), q.integer(4), q.integer(5)};
}

constexpr const char* kVerificationCols =
    "sid, service_sid, account_sid, to_, channel, status, code_hash, code_seed, code_length, "
    "check_attempts, amount, payee, send_attempts, date_created, date_updated, expires_at, "
    "fraud_prefix";

// Built once: the statement cache keys these by address.
const std::string kSelectVerificationBySid =
    std::string("SELECT ") + kVerificationCols +
    " FROM verifications WHERE sid = ?1 AND service_sid = ?2";
const std::string kSelectLatestVerificationByTo =
    std::string("SELECT ") + kVerificationCols +
    " FROM verifications WHERE service_sid = ?1 AND to_ = ?2 ORDER BY seq DESC LIMIT 1";
const std::string kSelectPendingVerification =
    std::string("SELECT ") + kVerificationCols +
    " FROM verifications WHERE service_sid = ?1 AND to_ = ?2 AND status = 'pending' AND "
    "expires_at > ?3 ORDER BY seq DESC LIMIT 1";
const std::string kInsertVerification =
    std::string("INSERT INTO verifications(") + kVerificationCols +
    ") VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)";
const std::string kSelectService =
    std::string("SELECT ") + kServiceCols + " FROM services WHERE sid = ?1 AND account_sid = ?2";

Verification readVerification(const Query& q) {
  Verification v;
  v.sid = q.text(0);
  v.service_sid = q.text(1);
  v.account_sid = q.text(2);
  v.to = q.text(3);
  v.channel = q.text(4);
  v.status = q.text(5);
  v.code_hash = q.blobAt(6);
  v.code_seed = q.blobAt(7);
  v.code_length = static_cast<int>(q.integer(8));
  v.check_attempts = static_cast<int>(q.integer(9));
  v.amount = q.optText(10);
  v.payee = q.optText(11);
  v.send_attempts = decodeAttempts(q.text(12));
  v.date_created = q.integer(13);
  v.date_updated = q.integer(14);
  v.expires_at = q.integer(15);
  v.fraud_prefix = q.optText(16);
  return v;
}

}  // namespace

Result<std::unique_ptr<SqliteStore>> SqliteStore::open(const std::string& path, bool durable) {
  auto db = Db::open(path, durable);
  if (!db) return fail(db.error());
  Db& d = **db;
  std::int64_t version = 0;
  {
    Query q = d.query("PRAGMA user_version");
    auto row = q.step();
    if (!row) return fail(row.error());
    version = q.integer(0);
  }
  if (version > kSchemaVersion)
    return fail(Error::internal("database schema is newer than this verifyd (version " +
                                std::to_string(version) + ")"));
  // Each step runs in its own transaction, so an interrupted upgrade resumes where it stopped.
  const char* steps[] = {kSchemaV1, kSchemaV2, kSchemaV3, kSchemaV4,
                         kSchemaV5, kSchemaV6, kSchemaV7};
  for (std::int64_t v = version; v < kSchemaVersion; ++v) {
    if (auto st = d.exec("BEGIN IMMEDIATE"); !st) return fail(st.error());
    if (auto st = d.exec(steps[v]); !st) {
      (void)d.exec("ROLLBACK");
      return fail(st.error());
    }
    if (auto st = d.exec("COMMIT"); !st) return fail(st.error());
  }
  return std::unique_ptr<SqliteStore>(new SqliteStore(path, durable, std::move(*db)));
}

SqliteStore::SqliteStore(std::string path, bool durable, std::unique_ptr<Db> writer)
    : path_(std::move(path)), durable_(durable), writer_db_(std::move(writer)) {
  // Checkpoints run on their own thread and connection, so that copying the WAL into the
  // database (and its fsync) never lengthens a commit that requests are waiting for.
  (void)writer_db_->exec("PRAGMA wal_autocheckpoint=0");
  sqlite3_wal_hook(
      writer_db_->raw(),
      [](void* self, sqlite3*, const char*, int pages) {
        auto* store = static_cast<SqliteStore*>(self);
        if (pages >= kCheckpointPages) {
          std::lock_guard lock(store->checkpoint_mu_);
          store->checkpoint_wanted_ = true;
          store->checkpoint_cv_.notify_one();
        }
        return SQLITE_OK;
      },
      this);
  writer_ = std::thread([this] { writerLoop(); });
  checkpointer_ = std::thread([this] { checkpointLoop(); });
}

SqliteStore::~SqliteStore() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  writer_.join();
  {
    std::lock_guard lock(checkpoint_mu_);
    checkpoint_stopping_ = true;
  }
  checkpoint_cv_.notify_one();
  checkpointer_.join();
}

void SqliteStore::checkpointLoop() {
  auto db = Db::open(path_, durable_);
  if (!db) return;
  for (;;) {
    {
      std::unique_lock lock(checkpoint_mu_);
      checkpoint_cv_.wait(lock, [&] { return checkpoint_wanted_ || checkpoint_stopping_; });
      if (checkpoint_stopping_) break;
      checkpoint_wanted_ = false;
    }
    // PASSIVE never blocks the writer or readers; what it cannot copy now waits for the next.
    sqlite3_wal_checkpoint_v2((*db)->raw(), nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
  }
  // A last full checkpoint so that a clean stop leaves a small WAL.
  sqlite3_wal_checkpoint_v2((*db)->raw(), nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
}

std::uint64_t SqliteStore::commits() const {
  std::lock_guard lock(mu_);
  return commits_;
}
std::uint64_t SqliteStore::writes() const {
  std::lock_guard lock(mu_);
  return writes_;
}

Status SqliteStore::write(WriteFn fn) {
  std::binary_semaphore finished{0};
  Status result;
  writeAsync(std::move(fn), [&](Status st) {
    result = std::move(st);
    finished.release();
  });
  finished.acquire();
  return result;
}

void SqliteStore::writeAsync(WriteFn fn, std::function<void(Status)> done) {
  auto job = std::make_unique<Job>(Job{std::move(fn), std::move(done)});
  {
    std::lock_guard lock(mu_);
    if (!stopping_) {
      queue_.push_back(std::move(job));
    }
  }
  if (job) return job->done(fail(Error::unavailable("store is shutting down")));
  work_cv_.notify_one();
}

void SqliteStore::writerLoop() {
  constexpr std::size_t kMaxBatch = 256;
  Db& db = *writer_db_;
  std::vector<std::unique_ptr<Job>> batch;
  std::vector<Status> results;
  for (;;) {
    batch.clear();
    results.clear();
    {
      std::unique_lock lock(mu_);
      work_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and nothing left to write
      while (!queue_.empty() && batch.size() < kMaxBatch) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    // Cached statements: compiling these four per write cost more than the writes themselves.
    Status txn = db.query("BEGIN IMMEDIATE").run();
    for (auto& job : batch) {
      if (!txn) {
        results.push_back(txn);
        continue;
      }
      // A savepoint per write: a write that fails is undone alone.
      if (auto st = db.query("SAVEPOINT w").run(); !st) {
        results.push_back(st);
        continue;
      }
      Status r;
      try {
        r = job->fn(db);
      } catch (const std::exception& e) {
        r = fail(Error::internal(e.what()));
      }
      if (!r) (void)db.query("ROLLBACK TO w").run();
      (void)db.query("RELEASE w").run();
      results.push_back(std::move(r));
    }
    if (txn) {
      txn = db.query("COMMIT").run();
      if (!txn) (void)db.exec("ROLLBACK");
    }
    {
      std::lock_guard lock(mu_);
      ++commits_;
      writes_ += batch.size();
    }
    for (std::size_t i = 0; i < batch.size(); ++i) {
      // Nothing of a failed transaction was stored: every write in it fails.
      if (!txn && results[i]) results[i] = fail(txn.error());
      batch[i]->done(std::move(results[i]));
    }
  }
}

// ---- accounts -------------------------------------------------------------------------------

Status SqliteStore::createAccount(const Account& a) {
  return write([&](Db& db) {
    return db
        .query(
            "INSERT INTO accounts(sid, friendly_name, auth_token_mac, auth_token_sealed, "
            "date_created) VALUES(?1, ?2, ?3, ?4, ?5)")
        .bind(1, a.sid)
        .bind(2, a.friendly_name)
        .blob(3, a.auth_token_mac)
        .blob(4, a.auth_token_sealed)
        .bind(5, static_cast<std::int64_t>(a.date_created))
        .run();
  });
}

Result<std::optional<Account>> SqliteStore::getAccount(std::string_view sid) {
  return read<std::optional<Account>>([&](Db& db) -> Result<std::optional<Account>> {
    Query q = db.query(
        "SELECT sid, friendly_name, auth_token_mac, auth_token_sealed, date_created FROM accounts "
        "WHERE sid = ?1");
    q.bind(1, sid);
    auto row = q.step();
    if (!row) return fail(row.error());
    if (!*row) return std::optional<Account>();
    return Account{q.text(0), q.text(1), q.blobAt(2), q.blobAt(3), q.integer(4)};
  });
}

Status SqliteStore::createApiKey(const ApiKey& k) {
  return write([&](Db& db) {
    return db
        .query(
            "INSERT INTO api_keys(sid, account_sid, friendly_name, secret_mac, date_created) "
            "VALUES(?1, ?2, ?3, ?4, ?5)")
        .bind(1, k.sid)
        .bind(2, k.account_sid)
        .bind(3, k.friendly_name)
        .blob(4, k.secret_mac)
        .bind(5, static_cast<std::int64_t>(k.date_created))
        .run();
  });
}

Result<std::optional<Credential>> SqliteStore::findCredential(std::string_view sid) {
  {
    std::shared_lock lock(cache_mu_);
    if (auto it = credential_cache_.find(std::string(sid)); it != credential_cache_.end())
      return std::optional<Credential>(it->second);
  }
  auto found = read<std::optional<Credential>>([&](Db& db) -> Result<std::optional<Credential>> {
    Query q = db.query(
        "SELECT sid, auth_token_mac FROM accounts WHERE sid = ?1 UNION ALL "
        "SELECT account_sid, secret_mac FROM api_keys WHERE sid = ?1");
    q.bind(1, sid);
    auto row = q.step();
    if (!row) return fail(row.error());
    if (!*row) return std::optional<Credential>();
    return Credential{q.text(0), q.blobAt(1)};
  });
  if (found && *found) {
    std::unique_lock lock(cache_mu_);
    credential_cache_.emplace(std::string(sid), **found);
  }
  return found;
}

Result<std::optional<std::string>> SqliteStore::getSetting(std::string_view key) {
  return read<std::optional<std::string>>([&](Db& db) -> Result<std::optional<std::string>> {
    Query q = db.query("SELECT value FROM settings WHERE key = ?1");
    q.bind(1, key);
    auto row = q.step();
    if (!row) return fail(row.error());
    if (!*row) return std::optional<std::string>();
    return q.text(0);
  });
}

Status SqliteStore::putSetting(std::string_view key, std::string_view value) {
  return write([&](Db& db) {
    return db.query("INSERT OR REPLACE INTO settings(key, value) VALUES(?1, ?2)")
        .bind(1, key)
        .bind(2, value)
        .run();
  });
}

// ---- services -------------------------------------------------------------------------------

Status SqliteStore::createService(const Service& s) {
  return write([&](Db& db) {
    return db
        .query(
            "INSERT INTO services(sid, account_sid, settings, date_created, date_updated) "
            "VALUES(?1, ?2, ?3, ?4, ?5)")
        .bind(1, s.sid)
        .bind(2, s.account_sid)
        .bind(3, encodeSettings(s.settings))
        .bind(4, static_cast<std::int64_t>(s.date_created))
        .bind(5, static_cast<std::int64_t>(s.date_updated))
        .run();
  });
}

namespace {
Result<std::optional<Service>> selectService(Db& db, std::string_view account_sid,
                                             std::string_view sid) {
  Query q = db.query(kSelectService.c_str());
  q.bind(1, sid).bind(2, account_sid);
  auto row = q.step();
  if (!row) return fail(row.error());
  if (!*row) return std::optional<Service>();
  return readService(q);
}
}  // namespace

void SqliteStore::forgetService(std::string_view sid) {
  std::unique_lock lock(cache_mu_);
  ++service_generation_;
  service_cache_.erase(std::string(sid));
}

Result<std::optional<Service>> SqliteStore::getService(std::string_view account_sid,
                                                       std::string_view sid) {
  std::uint64_t generation;
  {
    std::shared_lock lock(cache_mu_);
    if (auto it = service_cache_.find(std::string(sid)); it != service_cache_.end())
      return it->second.account_sid == account_sid ? std::optional<Service>(it->second)
                                                   : std::optional<Service>();
    generation = service_generation_;
  }
  auto found =
      read<std::optional<Service>>([&](Db& db) { return selectService(db, account_sid, sid); });
  if (found && *found) {
    std::unique_lock lock(cache_mu_);
    if (generation == service_generation_) service_cache_.emplace(std::string(sid), **found);
  }
  return found;
}

Result<Page<Service>> SqliteStore::listServices(std::string_view account_sid, PageCursor cursor,
                                                int page_size) {
  return read<Page<Service>>([&](Db& db) {
    return pageQuery<Service>(
        db, kServiceCols, "services", "account_sid = ?1", 1, true, cursor, page_size,
        [&](Query& q) { q.bind(1, account_sid); }, readService);
  });
}

Result<Service> SqliteStore::updateService(std::string_view account_sid, std::string_view sid,
                                           const std::function<Status(Service&)>& change) {
  Service out;
  Status st = write([&](Db& db) -> Status {
    auto found = selectService(db, account_sid, sid);
    if (!found) return fail(found.error());
    if (!*found) return fail(Error::notFound());
    out = std::move(**found);
    if (auto c = change(out); !c) return c;
    return db.query("UPDATE services SET settings = ?1, date_updated = ?2 WHERE sid = ?3")
        .bind(1, encodeSettings(out.settings))
        .bind(2, static_cast<std::int64_t>(out.date_updated))
        .bind(3, sid)
        .run();
  });
  forgetService(sid);
  if (!st) return fail(st.error());
  return out;
}

Status SqliteStore::deleteService(std::string_view account_sid, std::string_view sid) {
  Status st = write([&](Db& db) -> Status {
    auto del = db.query("DELETE FROM services WHERE sid = ?1 AND account_sid = ?2");
    if (auto st = del.bind(1, sid).bind(2, account_sid).run(); !st) return st;
    if (db.changes() == 0) return fail(Error::notFound());
    for (const char* sql :
         {"DELETE FROM verifications WHERE service_sid = ?1",
          "DELETE FROM rate_events WHERE bucket_sid IN (SELECT sid FROM buckets WHERE service_sid "
          "= ?1)",
          "DELETE FROM buckets WHERE service_sid = ?1",
          "DELETE FROM rate_limits WHERE service_sid = ?1",
          "DELETE FROM messaging_configs WHERE service_sid = ?1"})
      if (auto st = db.query(sql).bind(1, sid).run(); !st) return st;
    return {};
  });
  forgetService(sid);
  return st;
}

// ---- verifications --------------------------------------------------------------------------

namespace {

Result<std::optional<Verification>> selectVerification(Db& db, const VerificationKey& key) {
  auto fetchOne = [](Query& q) -> Result<std::optional<Verification>> {
    auto row = q.step();
    if (!row) return fail(row.error());
    if (!*row) return std::optional<Verification>();
    return readVerification(q);
  };
  if (!key.sid.empty()) {
    Query q = db.query(kSelectVerificationBySid.c_str());
    q.bind(1, key.sid).bind(2, key.service_sid);
    return fetchOne(q);
  }
  Query q = db.query(kSelectLatestVerificationByTo.c_str());
  q.bind(1, key.service_sid).bind(2, key.to);
  return fetchOne(q);
}

// Sliding-window counts: a start is allowed when fewer than `max` starts of the same key were
// counted in the bucket during the last `interval` seconds. Runs on the writer, so the count
// and the insert are atomic.
Status chargeBuckets(Db& db, const std::vector<RateCharge>& charges, UnixTime now) {
  for (const auto& c : charges) {
    if (auto st = db.query("DELETE FROM rate_events WHERE bucket_sid = ?1 AND key = ?2 AND t <= ?3")
                      .bind(1, c.bucket_sid)
                      .bind(2, c.key)
                      .bind(3, static_cast<std::int64_t>(now - c.interval))
                      .run();
        !st)
      return st;
    Query q =
        db.query("SELECT COUNT(*), MIN(t) FROM rate_events WHERE bucket_sid = ?1 AND key = ?2");
    q.bind(1, c.bucket_sid).bind(2, c.key);
    auto row = q.step();
    if (!row) return fail(row.error());
    if (q.integer(0) >= c.max) {
      Error e = Error::of(ErrorKind::kRateLimited, "Too many requests");
      e.param = c.rate_limit_name;
      e.retry_after = q.integer(1) + c.interval - now;
      return fail(e);
    }
  }
  for (const auto& c : charges)
    if (auto st = db.query("INSERT INTO rate_events(bucket_sid, key, t) VALUES(?1, ?2, ?3)")
                      .bind(1, c.bucket_sid)
                      .bind(2, c.key)
                      .bind(3, static_cast<std::int64_t>(now))
                      .run();
        !st)
      return st;
  return {};
}

Status countFraud(Db& db, const std::string& account_sid, const std::string& prefix,
                  std::int64_t hour, int sends, int conversions) {
  return db
      .query(
          "INSERT INTO fraud_counts(account_sid, prefix, hour, sends, conversions) "
          "VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(account_sid, prefix, hour) DO UPDATE SET "
          "sends = sends + excluded.sends, conversions = conversions + excluded.conversions")
      .bind(1, account_sid)
      .bind(2, prefix)
      .bind(3, hour)
      .bind(4, sends)
      .bind(5, conversions)
      .run();
}

Result<std::pair<std::int64_t, std::int64_t>> fraudTotals(Db& db, const std::string& account_sid,
                                                          const std::string& prefix,
                                                          std::int64_t from_hour) {
  Query q = db.query(
      "SELECT COALESCE(SUM(sends), 0), COALESCE(SUM(conversions), 0) FROM fraud_counts "
      "WHERE account_sid = ?1 AND prefix = ?2 AND hour >= ?3");
  q.bind(1, account_sid).bind(2, prefix).bind(3, from_hour);
  auto row = q.step();
  if (!row) return fail(row.error());
  return std::pair{q.integer(0), q.integer(1)};
}

// Fraud Guard for one sms start. Returns the refusal when the prefix is (or now becomes)
// blocked; writes (the count, a new block) are part of the start's transaction.
Result<std::optional<Error>> checkFraud(Db& db, const FraudCheck& f, UnixTime now) {
  const Error blocked =
      Error::of(ErrorKind::kFraudBlocked, "Verify Fraud Guard blocked messages to " + f.prefix +
                                              " (suspected SMS pumping); it lifts after 12 hours");
  {
    Query q =
        db.query("SELECT blocked_until FROM fraud_blocks WHERE account_sid = ?1 AND prefix = ?2");
    q.bind(1, f.account_sid).bind(2, f.prefix);
    auto row = q.step();
    if (!row) return fail(row.error());
    if (*row && q.integer(0) > now) return std::optional<Error>(blocked);
  }
  const std::int64_t hour = now / 3600;
  if (auto st = countFraud(db, f.account_sid, f.prefix, hour, 1, 0); !st) return fail(st.error());
  if (auto st = countFraud(db, f.account_sid, "", hour, 1, 0); !st) return fail(st.error());
  auto prefix = fraudTotals(db, f.account_sid, f.prefix, hour - f.window_hours + 1);
  if (!prefix) return fail(prefix.error());
  auto [sends, conversions] = *prefix;
  if (sends - conversions < f.min_unconverted) return std::optional<Error>();
  auto account = fraudTotals(db, f.account_sid, "", hour - f.baseline_hours + 1);
  if (!account) return fail(account.error());
  // The account's own conversion rate, counting this prefix's traffic out of it; with too
  // little history, assume half of all codes are used.
  std::int64_t base_sends = account->first - sends,
               base_conversions = account->second - conversions;
  double baseline = base_sends >= 20 ? static_cast<double>(base_conversions) / base_sends : 0.5;
  double rate = static_cast<double>(conversions) / sends;
  if (rate >= f.factor * baseline) return std::optional<Error>();
  if (auto st = db.query("INSERT OR REPLACE INTO fraud_blocks(account_sid, prefix, blocked_until, "
                         "date_created, sends, conversions) VALUES(?1, ?2, ?3, ?4, ?5, ?6)")
                    .bind(1, f.account_sid)
                    .bind(2, f.prefix)
                    .bind(3, static_cast<std::int64_t>(now + f.block_seconds))
                    .bind(4, static_cast<std::int64_t>(now))
                    .bind(5, sends)
                    .bind(6, conversions)
                    .run();
      !st)
    return fail(st.error());
  return std::optional<Error>(blocked);
}

// Sends to (service, to) within the window, across verifications, read from the send attempts
// of the verifications created in it (the index on service and `To` finds them).
Status checkDestinationSends(Db& db, const std::string& service_sid, const std::string& to,
                             UnixTime now, const StartGuards& g) {
  const UnixTime since = now - g.destination_window;
  Query q = db.query(
      "SELECT send_attempts FROM verifications WHERE service_sid = ?1 AND to_ = ?2 AND "
      "date_created > ?3");
  q.bind(1, service_sid).bind(2, to).bind(3, static_cast<std::int64_t>(since));
  std::vector<UnixTime> times;
  for (;;) {
    auto row = q.step();
    if (!row) return fail(row.error());
    if (!*row) break;
    for (const auto& a : decodeAttempts(q.text(0)))
      if (a.time > since) times.push_back(a.time);
  }
  if (static_cast<int>(times.size()) < g.max_destination_sends) return {};
  std::sort(times.begin(), times.end());
  Error e = Error::of(ErrorKind::kMaxSendAttempts, "Max send attempts reached");
  // Room again when the send `max` places from the newest leaves the window.
  e.retry_after = times[times.size() - g.max_destination_sends] + g.destination_window - now;
  return fail(e);
}

Status insertMessage(Db& db, const OutboxMessage& m) {
  return db
      .query(
          "INSERT INTO outbox(sid, account_sid, service_sid, verification_sid, to_, channel, "
          "body, date_created, code) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)")
      .bind(1, m.sid)
      .bind(2, m.account_sid)
      .bind(3, m.service_sid)
      .bind(4, m.verification_sid)
      .bind(5, m.to)
      .bind(6, m.channel)
      .bind(7, m.body)
      .bind(8, static_cast<std::int64_t>(m.date_created))
      .bind(9, m.code)
      .run();
}

constexpr const char* kAttemptCols =
    "sid, account_sid, service_sid, verification_sid, channel, to_, country, locale, code_length, "
    "payload, message_status, provider, provider_message_id, error_code, error_message, tries, "
    "provider_tries, outcome_unknown, next_try_ms, lease_token, date_created, date_updated";
const std::string kInsertAttempt =
    std::string("INSERT INTO attempts(") + kAttemptCols +
    ") VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, "
    "?19, ?20, ?21, ?22)";

Status insertAttempt(Db& db, const DeliveryAttempt& a) {
  Query q = db.query(kInsertAttempt.c_str());
  q.bind(1, a.sid).bind(2, a.account_sid).bind(3, a.service_sid).bind(4, a.verification_sid);
  q.bind(5, a.channel).bind(6, a.to).bind(7, a.country).bind(8, a.locale);
  q.bind(9, a.code_length).blob(10, a.payload_sealed).bind(11, a.message_status);
  q.bind(12, a.provider).bind(13, a.provider_message_id).bind(14, a.error_code);
  q.bind(15, a.error_message).bind(16, a.tries).bind(17, a.provider_tries);
  q.bind(18, a.outcome_unknown ? 1 : 0).bind(19, a.next_try_ms).bind(20, a.lease_token);
  q.bind(21, static_cast<std::int64_t>(a.date_created));
  q.bind(22, static_cast<std::int64_t>(a.date_updated));
  return q.run();
}

// Reads kAttemptCols starting at column `c`, then the converted flag.
DeliveryAttempt readAttempt(const Query& q, int c) {
  DeliveryAttempt a;
  a.sid = q.text(c + 0);
  a.account_sid = q.text(c + 1);
  a.service_sid = q.text(c + 2);
  a.verification_sid = q.text(c + 3);
  a.channel = q.text(c + 4);
  a.to = q.text(c + 5);
  a.country = q.text(c + 6);
  a.locale = q.text(c + 7);
  a.code_length = static_cast<int>(q.integer(c + 8));
  a.payload_sealed = q.blobAt(c + 9);
  a.message_status = q.text(c + 10);
  a.provider = q.text(c + 11);
  a.provider_message_id = q.text(c + 12);
  a.error_code = q.text(c + 13);
  a.error_message = q.text(c + 14);
  a.tries = static_cast<int>(q.integer(c + 15));
  a.provider_tries = static_cast<int>(q.integer(c + 16));
  a.outcome_unknown = q.integer(c + 17) != 0;
  a.next_try_ms = q.integer(c + 18);
  a.lease_until_ms = a.message_status == message_status::kSending ? a.next_try_ms : 0;
  a.lease_token = q.text(c + 19);
  a.date_created = q.integer(c + 20);
  a.date_updated = q.integer(c + 21);
  a.converted = q.integer(c + 22) != 0;
  return a;
}

// How far along a message status is: receipts only move an attempt forward.
int statusRank(std::string_view s) {
  if (s == message_status::kQueued) return 0;
  if (s == message_status::kSending) return 1;
  if (s == message_status::kSent) return 2;
  return 3;  // delivered, undelivered, failed: final
}

}  // namespace

void SqliteStore::startAsync(
    std::string service_sid, std::string to, UnixTime now, StartGuards guards,
    std::function<Result<StartWrite>(const std::optional<Verification>&)> decide,
    Completion<Verification> done) {
  auto out = std::make_shared<Verification>();
  // A refusal that must still commit (a new Fraud Guard block) is returned through here.
  auto refusal = std::make_shared<std::optional<Error>>();
  auto fn = [service_sid = std::move(service_sid), to = std::move(to), now,
             guards = std::move(guards), decide = std::move(decide), out,
             refusal](Db& db) -> Status {
    // Fraud Guard first: its refusal commits (a new block must persist), so nothing else may
    // have been written by then. Any later refusal fails the job and undoes its count too.
    if (guards.fraud) {
      auto verdict = checkFraud(db, *guards.fraud, now);
      if (!verdict) return fail(verdict.error());
      if (*verdict) {
        *refusal = **verdict;
        return {};
      }
    }
    if (auto st = chargeBuckets(db, guards.charges, now); !st) return st;
    if (guards.max_destination_sends > 0)
      if (auto st = checkDestinationSends(db, service_sid, to, now, guards); !st) return st;
    std::optional<Verification> pending;
    {
      Query q = db.query(kSelectPendingVerification.c_str());
      q.bind(1, service_sid).bind(2, to).bind(3, static_cast<std::int64_t>(now));
      auto row = q.step();
      if (!row) return fail(row.error());
      if (*row) pending = readVerification(q);
    }
    if (!pending && guards.max_pending_per_number > 0) {
      Query q = db.query(
          "SELECT COUNT(*) FROM verifications WHERE to_ = ?1 AND account_sid = ?2 AND "
          "status = 'pending' AND expires_at > ?3");
      q.bind(1, to).bind(2, guards.account_sid).bind(3, static_cast<std::int64_t>(now));
      auto row = q.step();
      if (!row) return fail(row.error());
      if (q.integer(0) >= guards.max_pending_per_number)
        return fail(Error::of(ErrorKind::kTooManyPending,
                              "Too many concurrent requests for phone number " + to));
    }
    auto w = decide(pending);
    if (!w) return fail(w.error());
    const Verification& v = w->verification;
    if (w->is_new) {
      auto ins = db.query(kInsertVerification.c_str());
      ins.bind(1, v.sid).bind(2, v.service_sid).bind(3, v.account_sid).bind(4, v.to);
      ins.bind(5, v.channel).bind(6, v.status).blob(7, v.code_hash).blob(8, v.code_seed);
      ins.bind(9, v.code_length).bind(10, v.check_attempts).bind(11, v.amount).bind(12, v.payee);
      ins.bind(13, encodeAttempts(v.send_attempts));
      ins.bind(14, static_cast<std::int64_t>(v.date_created));
      ins.bind(15, static_cast<std::int64_t>(v.date_updated));
      ins.bind(16, static_cast<std::int64_t>(v.expires_at));
      ins.bind(17, v.fraud_prefix);
      if (auto s = ins.run(); !s) return s;
    } else {
      auto upd = db.query(
          "UPDATE verifications SET channel = ?1, code_hash = ?2, code_seed = ?3, "
          "send_attempts = ?4, date_updated = ?5 WHERE sid = ?6");
      upd.bind(1, v.channel).blob(2, v.code_hash).blob(3, v.code_seed);
      upd.bind(4, encodeAttempts(v.send_attempts));
      upd.bind(5, static_cast<std::int64_t>(v.date_updated)).bind(6, v.sid);
      if (auto s = upd.run(); !s) return s;
    }
    if (w->message)
      if (auto s = insertMessage(db, *w->message); !s) return s;
    if (w->attempt)
      if (auto s = insertAttempt(db, *w->attempt); !s) return s;
    *out = v;
    return {};
  };
  writeAsync(std::move(fn), [out, refusal, done = std::move(done)](Status st) {
    if (!st) return done(fail(st.error()));
    if (*refusal) return done(fail(**refusal));
    done(std::move(*out));
  });
}

Result<std::optional<Verification>> SqliteStore::getVerification(const VerificationKey& key) {
  return read<std::optional<Verification>>([&](Db& db) { return selectVerification(db, key); });
}

void SqliteStore::mutateAsync(VerificationKey key,
                              std::function<Result<Verification>(const Verification&)> change,
                              Completion<Verification> done) {
  auto out = std::make_shared<Verification>();
  auto fn = [key = std::move(key), change = std::move(change), out](Db& db) -> Status {
    auto found = selectVerification(db, key);
    if (!found) return fail(found.error());
    if (!*found) return fail(Error::notFound());
    auto changed = change(**found);
    if (!changed) return fail(changed.error());
    *out = std::move(*changed);
    if (out->status == status::kApproved && (*found)->status != status::kApproved &&
        out->fraud_prefix) {
      // A conversion, counted in the hour the code was sent.
      const std::int64_t hour = out->date_created / 3600;
      if (auto st = countFraud(db, out->account_sid, *out->fraud_prefix, hour, 0, 1); !st)
        return st;
      if (auto st = countFraud(db, out->account_sid, "", hour, 0, 1); !st) return st;
    }
    return db
        .query(
            "UPDATE verifications SET status = ?1, check_attempts = ?2, date_updated = ?3 "
            "WHERE sid = ?4")
        .bind(1, out->status)
        .bind(2, out->check_attempts)
        .bind(3, static_cast<std::int64_t>(out->date_updated))
        .bind(4, out->sid)
        .run();
  };
  writeAsync(std::move(fn), [out, done = std::move(done)](Status st) {
    if (!st) return done(fail(st.error()));
    done(std::move(*out));
  });
}

// ---- rate limits ----------------------------------------------------------------------------

namespace {
constexpr const char* kRateLimitCols =
    "seq, sid, service_sid, account_sid, unique_name, description, date_created, date_updated";
constexpr const char* kBucketCols =
    "seq, sid, rate_limit_sid, service_sid, account_sid, max, interval, date_created, date_updated";
const std::string kSelectRateLimit = std::string("SELECT ") + kRateLimitCols +
                                     " FROM rate_limits WHERE sid = ?1 AND service_sid = ?2";
const std::string kSelectBucket =
    std::string("SELECT ") + kBucketCols + " FROM buckets WHERE sid = ?1 AND rate_limit_sid = ?2";

RateLimit readRateLimit(const Query& q) {
  return RateLimit{q.text(1),    q.text(2),    q.text(3),   q.text(4),
                   q.optText(5), q.integer(6), q.integer(7)};
}
Bucket readBucket(const Query& q) {
  return Bucket{q.text(1),
                q.text(2),
                q.text(3),
                q.text(4),
                static_cast<int>(q.integer(5)),
                static_cast<int>(q.integer(6)),
                q.integer(7),
                q.integer(8)};
}

Result<std::int64_t> count(Db& db, const char* sql, std::string_view a) {
  Query q = db.query(sql);
  q.bind(1, a);
  auto row = q.step();
  if (!row) return fail(row.error());
  return q.integer(0);
}
}  // namespace

Status SqliteStore::createRateLimit(const RateLimit& r, int max_per_service) {
  return write([&](Db& db) -> Status {
    auto n = count(db, "SELECT COUNT(*) FROM rate_limits WHERE service_sid = ?1", r.service_sid);
    if (!n) return fail(n.error());
    if (*n >= max_per_service)
      return fail(Error::of(ErrorKind::kTooManyRateLimits, "Max number of Rate Limits reached (" +
                                                               std::to_string(max_per_service) +
                                                               " per Service)"));
    Query dup = db.query("SELECT 1 FROM rate_limits WHERE service_sid = ?1 AND unique_name = ?2");
    dup.bind(1, r.service_sid).bind(2, r.unique_name);
    auto row = dup.step();
    if (!row) return fail(row.error());
    if (*row)
      return fail(Error::of(ErrorKind::kDuplicateRateLimit,
                            "A Rate Limit with UniqueName " + r.unique_name + " already exists"));
    return db
        .query(
            "INSERT INTO rate_limits(sid, service_sid, account_sid, unique_name, description, "
            "date_created, date_updated) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)")
        .bind(1, r.sid)
        .bind(2, r.service_sid)
        .bind(3, r.account_sid)
        .bind(4, r.unique_name)
        .bind(5, r.description)
        .bind(6, static_cast<std::int64_t>(r.date_created))
        .bind(7, static_cast<std::int64_t>(r.date_updated))
        .run();
  });
}

Result<std::optional<RateLimit>> SqliteStore::getRateLimit(std::string_view service_sid,
                                                           std::string_view sid) {
  return read<std::optional<RateLimit>>([&](Db& db) {
    return selectOne<RateLimit>(db, kSelectRateLimit, sid, service_sid, readRateLimit);
  });
}

Result<Page<RateLimit>> SqliteStore::listRateLimits(std::string_view service_sid, PageCursor cursor,
                                                    int page_size) {
  return read<Page<RateLimit>>([&](Db& db) {
    return pageQuery<RateLimit>(
        db, kRateLimitCols, "rate_limits", "service_sid = ?1", 1, true, cursor, page_size,
        [&](Query& q) { q.bind(1, service_sid); }, readRateLimit);
  });
}

Result<RateLimit> SqliteStore::updateRateLimit(std::string_view service_sid, std::string_view sid,
                                               std::optional<std::string> description,
                                               UnixTime now) {
  RateLimit out;
  Status st = write([&](Db& db) -> Status {
    auto found = selectOne<RateLimit>(db, kSelectRateLimit, sid, service_sid, readRateLimit);
    if (!found) return fail(found.error());
    if (!*found) return fail(Error::notFound());
    out = std::move(**found);
    if (description) out.description = description->empty() ? std::nullopt : description;
    out.date_updated = now;
    return db.query("UPDATE rate_limits SET description = ?1, date_updated = ?2 WHERE sid = ?3")
        .bind(1, out.description)
        .bind(2, static_cast<std::int64_t>(now))
        .bind(3, sid)
        .run();
  });
  if (!st) return fail(st.error());
  return out;
}

Status SqliteStore::deleteRateLimit(std::string_view service_sid, std::string_view sid) {
  return write([&](Db& db) -> Status {
    if (auto st = db.query("DELETE FROM rate_limits WHERE sid = ?1 AND service_sid = ?2")
                      .bind(1, sid)
                      .bind(2, service_sid)
                      .run();
        !st)
      return st;
    if (db.changes() == 0) return fail(Error::notFound());
    if (auto st = db.query("DELETE FROM rate_events WHERE bucket_sid IN "
                           "(SELECT sid FROM buckets WHERE rate_limit_sid = ?1)")
                      .bind(1, sid)
                      .run();
        !st)
      return st;
    return db.query("DELETE FROM buckets WHERE rate_limit_sid = ?1").bind(1, sid).run();
  });
}

Status SqliteStore::createBucket(const Bucket& b, int max_per_limit) {
  return write([&](Db& db) -> Status {
    auto n = count(db, "SELECT COUNT(*) FROM buckets WHERE rate_limit_sid = ?1", b.rate_limit_sid);
    if (!n) return fail(n.error());
    if (*n >= max_per_limit)
      return fail(Error::of(
          ErrorKind::kTooManyBuckets,
          "Max number of Buckets reached (" + std::to_string(max_per_limit) + " per Rate Limit)"));
    Query dup = db.query("SELECT 1 FROM buckets WHERE rate_limit_sid = ?1 AND interval = ?2");
    dup.bind(1, b.rate_limit_sid).bind(2, b.interval);
    auto row = dup.step();
    if (!row) return fail(row.error());
    if (*row)
      return fail(Error::of(ErrorKind::kDuplicateBucket,
                            "A Bucket with Interval " + std::to_string(b.interval) +
                                " already exists for this Rate Limit"));
    return db
        .query(
            "INSERT INTO buckets(sid, rate_limit_sid, service_sid, account_sid, max, interval, "
            "date_created, date_updated) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")
        .bind(1, b.sid)
        .bind(2, b.rate_limit_sid)
        .bind(3, b.service_sid)
        .bind(4, b.account_sid)
        .bind(5, b.max)
        .bind(6, b.interval)
        .bind(7, static_cast<std::int64_t>(b.date_created))
        .bind(8, static_cast<std::int64_t>(b.date_updated))
        .run();
  });
}

Result<std::optional<Bucket>> SqliteStore::getBucket(std::string_view rate_limit_sid,
                                                     std::string_view sid) {
  return read<std::optional<Bucket>>([&](Db& db) {
    return selectOne<Bucket>(db, kSelectBucket, sid, rate_limit_sid, readBucket);
  });
}

Result<Page<Bucket>> SqliteStore::listBuckets(std::string_view rate_limit_sid, PageCursor cursor,
                                              int page_size) {
  return read<Page<Bucket>>([&](Db& db) {
    return pageQuery<Bucket>(
        db, kBucketCols, "buckets", "rate_limit_sid = ?1", 1, true, cursor, page_size,
        [&](Query& q) { q.bind(1, rate_limit_sid); }, readBucket);
  });
}

Result<Bucket> SqliteStore::updateBucket(std::string_view rate_limit_sid, std::string_view sid,
                                         std::optional<int> max, std::optional<int> interval,
                                         UnixTime now) {
  Bucket out;
  Status st = write([&](Db& db) -> Status {
    auto found = selectOne<Bucket>(db, kSelectBucket, sid, rate_limit_sid, readBucket);
    if (!found) return fail(found.error());
    if (!*found) return fail(Error::notFound());
    out = std::move(**found);
    if (interval && *interval != out.interval) {
      Query dup = db.query("SELECT 1 FROM buckets WHERE rate_limit_sid = ?1 AND interval = ?2");
      dup.bind(1, rate_limit_sid).bind(2, *interval);
      auto row = dup.step();
      if (!row) return fail(row.error());
      if (*row)
        return fail(Error::of(ErrorKind::kDuplicateBucket,
                              "A Bucket with Interval " + std::to_string(*interval) +
                                  " already exists for this Rate Limit"));
      out.interval = *interval;
    }
    if (max) out.max = *max;
    out.date_updated = now;
    return db.query("UPDATE buckets SET max = ?1, interval = ?2, date_updated = ?3 WHERE sid = ?4")
        .bind(1, out.max)
        .bind(2, out.interval)
        .bind(3, static_cast<std::int64_t>(now))
        .bind(4, sid)
        .run();
  });
  if (!st) return fail(st.error());
  return out;
}

Status SqliteStore::deleteBucket(std::string_view rate_limit_sid, std::string_view sid) {
  return write([&](Db& db) -> Status {
    if (auto st = db.query("DELETE FROM buckets WHERE sid = ?1 AND rate_limit_sid = ?2")
                      .bind(1, sid)
                      .bind(2, rate_limit_sid)
                      .run();
        !st)
      return st;
    if (db.changes() == 0) return fail(Error::notFound());
    return db.query("DELETE FROM rate_events WHERE bucket_sid = ?1").bind(1, sid).run();
  });
}

Result<std::vector<std::pair<std::string, std::optional<Bucket>>>> SqliteStore::rateLimitsOfService(
    std::string_view service_sid) {
  using Out = std::vector<std::pair<std::string, std::optional<Bucket>>>;
  return read<Out>([&](Db& db) -> Result<Out> {
    // The bucket's columns as readBucket expects them, then the limit's name; a limit without
    // buckets comes once, with NULL bucket columns.
    static const std::string sql =
        "SELECT b.seq, b.sid, b.rate_limit_sid, b.service_sid, b.account_sid, b.max, b.interval, "
        "b.date_created, b.date_updated, r.unique_name FROM rate_limits r LEFT JOIN buckets b ON "
        "b.rate_limit_sid = r.sid WHERE r.service_sid = ?1 ORDER BY r.seq, b.seq";
    Query q = db.query(sql.c_str());
    q.bind(1, service_sid);
    Out out;
    for (;;) {
      auto row = q.step();
      if (!row) return fail(row.error());
      if (!*row) break;
      std::optional<Bucket> bucket;
      if (q.optText(1)) bucket = readBucket(q);
      out.emplace_back(q.text(9), std::move(bucket));
    }
    return out;
  });
}

// ---- safe list and geo permissions ---------------------------------------------------------

Result<SafeNumber> SqliteStore::addSafeNumber(const SafeNumber& entry) {
  SafeNumber out = entry;
  Status st = write([&](Db& db) -> Status {
    if (auto ins = db.query("INSERT OR IGNORE INTO safe_numbers(account_sid, phone_number, sid, "
                            "date_created) VALUES(?1, ?2, ?3, ?4)")
                       .bind(1, entry.account_sid)
                       .bind(2, entry.phone_number)
                       .bind(3, entry.sid)
                       .bind(4, static_cast<std::int64_t>(entry.date_created))
                       .run();
        !ins)
      return ins;
    Query q = db.query(
        "SELECT sid, date_created FROM safe_numbers WHERE account_sid = ?1 AND phone_number = ?2");
    q.bind(1, entry.account_sid).bind(2, entry.phone_number);
    auto row = q.step();
    if (!row) return fail(row.error());
    out.sid = q.text(0);
    out.date_created = q.integer(1);
    return {};
  });
  if (!st) return fail(st.error());
  return out;
}

Result<std::optional<SafeNumber>> SqliteStore::getSafeNumber(std::string_view account_sid,
                                                             std::string_view phone_number) {
  return read<std::optional<SafeNumber>>([&](Db& db) -> Result<std::optional<SafeNumber>> {
    Query q = db.query(
        "SELECT sid, date_created FROM safe_numbers WHERE account_sid = ?1 AND phone_number = ?2");
    q.bind(1, account_sid).bind(2, phone_number);
    auto row = q.step();
    if (!row) return fail(row.error());
    if (!*row) return std::optional<SafeNumber>();
    return SafeNumber{q.text(0), std::string(account_sid), std::string(phone_number), q.integer(1)};
  });
}

Status SqliteStore::removeSafeNumber(std::string_view account_sid, std::string_view phone_number) {
  return write([&](Db& db) -> Status {
    if (auto st = db.query("DELETE FROM safe_numbers WHERE account_sid = ?1 AND phone_number = ?2")
                      .bind(1, account_sid)
                      .bind(2, phone_number)
                      .run();
        !st)
      return st;
    if (db.changes() == 0) return fail(Error::notFound());
    return {};
  });
}

Status SqliteStore::setGeoPermission(std::string_view account_sid, const GeoPermission& p) {
  Status st = write([&](Db& db) -> Status {
    return db
        .query(
            "INSERT OR REPLACE INTO geo_permissions(account_sid, channel, country, allowed, "
            "date_updated) VALUES(?1, ?2, ?3, ?4, ?5)")
        .bind(1, account_sid)
        .bind(2, p.channel)
        .bind(3, p.country)
        .bind(4, p.allowed ? 1 : 0)
        .bind(5, static_cast<std::int64_t>(p.date_updated))
        .run();
  });
  std::unique_lock lock(cache_mu_);
  ++geo_generation_;
  geo_cache_.erase(std::string(account_sid));
  return st;
}

Result<std::vector<GeoPermission>> SqliteStore::geoPermissions(std::string_view account_sid) {
  std::uint64_t generation;
  {
    std::shared_lock lock(cache_mu_);
    if (auto it = geo_cache_.find(std::string(account_sid)); it != geo_cache_.end())
      return it->second;
    generation = geo_generation_;
  }
  using Out = std::vector<GeoPermission>;
  auto found = read<Out>([&](Db& db) -> Result<Out> {
    Query q = db.query(
        "SELECT channel, country, allowed, date_updated FROM geo_permissions WHERE account_sid = "
        "?1 ORDER BY channel, country");
    q.bind(1, account_sid);
    Out out;
    for (;;) {
      auto row = q.step();
      if (!row) return fail(row.error());
      if (!*row) break;
      out.push_back(GeoPermission{q.text(0), q.text(1), q.integer(2) != 0, q.integer(3)});
    }
    return out;
  });
  if (found) {
    std::unique_lock lock(cache_mu_);
    if (generation == geo_generation_) geo_cache_.emplace(std::string(account_sid), *found);
  }
  return found;
}

Result<std::vector<FraudBlock>> SqliteStore::fraudBlocks(std::string_view account_sid,
                                                         UnixTime now) {
  using Out = std::vector<FraudBlock>;
  return read<Out>([&](Db& db) -> Result<Out> {
    Query q = db.query(
        "SELECT prefix, blocked_until, date_created, sends, conversions FROM fraud_blocks WHERE "
        "account_sid = ?1 AND blocked_until > ?2 ORDER BY date_created");
    q.bind(1, account_sid).bind(2, static_cast<std::int64_t>(now));
    Out out;
    for (;;) {
      auto row = q.step();
      if (!row) return fail(row.error());
      if (!*row) break;
      out.push_back(FraudBlock{q.text(0), q.integer(1), q.integer(2), q.integer(3), q.integer(4)});
    }
    return out;
  });
}

Status SqliteStore::liftFraudBlock(std::string_view account_sid, std::string_view prefix) {
  return write([&](Db& db) -> Status {
    if (auto st = db.query("DELETE FROM fraud_blocks WHERE account_sid = ?1 AND prefix = ?2")
                      .bind(1, account_sid)
                      .bind(2, prefix)
                      .run();
        !st)
      return st;
    if (db.changes() == 0) return fail(Error::notFound());
    // Start the prefix afresh, or the next send would block it again at once.
    return db.query("DELETE FROM fraud_counts WHERE account_sid = ?1 AND prefix = ?2")
        .bind(1, account_sid)
        .bind(2, prefix)
        .run();
  });
}

// ---- dev outbox -----------------------------------------------------------------------------

Result<Page<OutboxMessage>> SqliteStore::listMessages(std::string_view account_sid,
                                                      std::string_view to, PageCursor cursor,
                                                      int page_size) {
  return read<Page<OutboxMessage>>([&](Db& db) {
    auto readRow = [](const Query& q) {
      return OutboxMessage{q.text(1), q.text(2), q.text(3),    q.text(4), q.text(5),
                           q.text(6), q.text(7), q.integer(8), q.text(9)};
    };
    const std::string cols =
        "seq, sid, account_sid, service_sid, verification_sid, to_, channel, body, date_created, "
        "code";
    if (to.empty())
      return pageQuery<OutboxMessage>(
          db, cols, "outbox", "account_sid = ?1", 1, false, cursor, page_size,
          [&](Query& q) { q.bind(1, account_sid); }, readRow);
    return pageQuery<OutboxMessage>(
        db, cols, "outbox", "account_sid = ?1 AND to_ = ?2", 2, false, cursor, page_size,
        [&](Query& q) { q.bind(1, account_sid).bind(2, to); }, readRow);
  });
}

// ---- delivery attempts ---------------------------------------------------------------------

namespace {
// The attempt's columns (qualified: the conversion flag reads verifications) after `seq`.
const std::string kAttemptSelectCols = [] {
  std::string cols = "a.seq";
  std::string all = kAttemptCols;
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

// The WHERE clause and its bindings for a filter (parameters from ?1).
struct AttemptWhere {
  std::string sql;
  std::vector<std::string> texts;
  std::vector<std::int64_t> numbers;
  std::vector<bool> is_text;
};

AttemptWhere attemptWhere(std::string_view account_sid, const AttemptFilter& f) {
  AttemptWhere w;
  auto text = [&w](std::string clause, std::string v) {
    w.sql += " AND " + clause + " ?" + std::to_string(w.is_text.size() + 1);
    w.texts.push_back(std::move(v));
    w.numbers.push_back(0);
    w.is_text.push_back(true);
  };
  auto number = [&w](std::string clause, std::int64_t v) {
    w.sql += " AND " + clause + " ?" + std::to_string(w.is_text.size() + 1);
    w.texts.emplace_back();
    w.numbers.push_back(v);
    w.is_text.push_back(false);
  };
  w.sql = "a.account_sid = ?1";
  w.texts.emplace_back(account_sid);
  w.numbers.push_back(0);
  w.is_text.push_back(true);
  if (!f.service_sid.empty()) text("a.service_sid =", f.service_sid);
  if (!f.verification_sid.empty()) {
    // Through the verification's own list of attempt SIDs and the SID index: an index on
    // verification_sid cost 5-10% of creates/s (bench, 2 cores) for a filter used by reads only.
    w.sql +=
        " AND a.sid IN (SELECT json_extract(j.value, '$[0]') FROM verifications v, "
        "json_each(v.send_attempts) j WHERE v.sid = ?" +
        std::to_string(w.is_text.size() + 1) + ")";
    w.texts.push_back(f.verification_sid);
    w.numbers.push_back(0);
    w.is_text.push_back(true);
  }
  if (!f.channel.empty()) text("a.channel =", f.channel);
  if (!f.to.empty()) text("a.to_ =", f.to);
  if (!f.country.empty()) text("a.country =", f.country);
  if (!f.destination_prefix.empty())
    text("substr(a.to_, 1, length(?" + std::to_string(w.is_text.size() + 1) + ")) =",
         f.destination_prefix);
  if (f.created_after > 0) number("a.date_created >=", f.created_after);
  if (f.created_before > 0) number("a.date_created <=", f.created_before);
  if (f.converted)
    w.sql += std::string(" AND ") + (*f.converted ? "" : "NOT ") +
             "EXISTS(SELECT 1 FROM verifications v WHERE v.sid = a.verification_sid AND "
             "v.status = 'approved')";
  return w;
}

void bindWhere(Query& q, const AttemptWhere& w) {
  for (std::size_t i = 0; i < w.is_text.size(); ++i) {
    if (w.is_text[i])
      q.bind(static_cast<int>(i + 1), w.texts[i]);
    else
      q.bind(static_cast<int>(i + 1), w.numbers[i]);
  }
}
}  // namespace

Result<bool> SqliteStore::anyAttemptDue(std::int64_t now_ms) {
  return read<bool>([&](Db& db) -> Result<bool> {
    Query q = db.query(
        "SELECT 1 FROM attempts WHERE message_status IN ('queued', 'sending') AND next_try_ms "
        "<= ?1 LIMIT 1");
    q.bind(1, now_ms);
    return q.step();
  });
}

Result<std::vector<DeliveryAttempt>> SqliteStore::claimAttempts(std::int64_t now_ms,
                                                                std::int64_t lease_ms, int limit,
                                                                const std::string& lease_token) {
  std::vector<DeliveryAttempt> claimed;
  Status st = write([&](Db& db) -> Status {
    claimed.clear();
    {
      Query q = db.query(kAttemptSelect +
                         " WHERE a.message_status IN ('queued', 'sending') AND a.next_try_ms <= "
                         "?1 ORDER BY a.next_try_ms LIMIT ?2");
      q.bind(1, now_ms).bind(2, limit);
      for (;;) {
        auto row = q.step();
        if (!row) return fail(row.error());
        if (!*row) break;
        claimed.push_back(readAttempt(q, 1));
      }
    }
    for (auto& a : claimed) {
      // A lease that ran out means its sender died mid-try: that try may have been delivered.
      if (a.message_status == message_status::kSending) a.outcome_unknown = true;
      a.message_status = message_status::kSending;
      a.lease_token = lease_token;
      a.lease_until_ms = now_ms + lease_ms;
      Query u = db.query(
          "UPDATE attempts SET message_status = 'sending', lease_token = ?1, next_try_ms = ?2, "
          "outcome_unknown = ?3 WHERE sid = ?4");
      u.bind(1, lease_token).bind(2, a.lease_until_ms).bind(3, a.outcome_unknown ? 1 : 0);
      if (auto s = u.bind(4, a.sid).run(); !s) return s;
    }
    return {};
  });
  if (!st) return fail(st.error());
  return claimed;
}

Status SqliteStore::finishTry(const DeliveryAttempt& a) {
  return write([&](Db& db) -> Status {
    std::string current, current_code, current_message;
    {
      Query q = db.query(
          "SELECT message_status, lease_token, error_code, error_message FROM attempts WHERE sid "
          "= ?1");
      q.bind(1, a.sid);
      auto row = q.step();
      if (!row) return fail(row.error());
      if (!*row) return {};
      current = q.text(0);
      // Lost the lease (another worker took over): its outcome is the one that counts.
      if (q.text(1) != a.lease_token) return {};
      current_code = q.text(2);
      current_message = q.text(3);
    }
    // A receipt may have arrived while the provider call was still returning: it is further
    // along than the try's own outcome, so it stays, with its error.
    std::string status = a.message_status;
    std::string error_code = a.error_code, error_message = a.error_message;
    if (current != message_status::kSending && statusRank(current) > statusRank(status)) {
      status = current;
      error_code = current_code;
      error_message = current_message;
    }
    Query u = db.query(
        "UPDATE attempts SET message_status = ?1, provider = ?2, provider_message_id = ?3, "
        "error_code = ?4, error_message = ?5, tries = ?6, provider_tries = ?7, "
        "outcome_unknown = ?8, next_try_ms = ?9, lease_token = '', date_updated = ?10 "
        "WHERE sid = ?11");
    u.bind(1, status).bind(2, a.provider).bind(3, a.provider_message_id).bind(4, error_code);
    u.bind(5, error_message).bind(6, a.tries).bind(7, a.provider_tries);
    u.bind(8, a.outcome_unknown ? 1 : 0).bind(9, a.next_try_ms);
    u.bind(10, static_cast<std::int64_t>(a.date_updated)).bind(11, a.sid);
    return u.run();
  });
}

Status SqliteStore::applyReceipt(std::string_view sid, std::string_view status,
                                 std::string_view error_code, std::string_view error_message,
                                 UnixTime now) {
  return write([&](Db& db) -> Status {
    std::string current;
    {
      Query q = db.query("SELECT message_status FROM attempts WHERE sid = ?1");
      q.bind(1, sid);
      auto row = q.step();
      if (!row) return fail(row.error());
      if (!*row) return fail(Error::notFound());
      current = q.text(0);
    }
    // Never backwards; a final status is final. While a try is in flight (sending) the
    // receipt is kept and the try's outcome will not lower it.
    if (statusRank(current) >= 3 || statusRank(status) <= statusRank(current)) {
      if (current != message_status::kSending) return {};
    }
    Query u = db.query(
        "UPDATE attempts SET message_status = ?1, error_code = CASE WHEN ?2 = '' THEN error_code "
        "ELSE ?2 END, error_message = CASE WHEN ?3 = '' THEN error_message ELSE ?3 END, "
        "date_updated = ?4 WHERE sid = ?5");
    u.bind(1, status).bind(2, error_code).bind(3, error_message);
    return u.bind(4, static_cast<std::int64_t>(now)).bind(5, sid).run();
  });
}

Result<std::optional<DeliveryAttempt>> SqliteStore::getAttempt(std::string_view account_sid,
                                                               std::string_view sid) {
  return read<std::optional<DeliveryAttempt>>(
      [&](Db& db) -> Result<std::optional<DeliveryAttempt>> {
        Query q = db.query(kAttemptSelect + " WHERE a.sid = ?1 AND a.account_sid = ?2");
        q.bind(1, sid).bind(2, account_sid);
        auto row = q.step();
        if (!row) return fail(row.error());
        if (!*row) return std::optional<DeliveryAttempt>();
        return std::optional<DeliveryAttempt>(readAttempt(q, 1));
      });
}

Result<Page<DeliveryAttempt>> SqliteStore::listAttempts(std::string_view account_sid,
                                                        const AttemptFilter& filter,
                                                        PageCursor cursor, int page_size) {
  return read<Page<DeliveryAttempt>>([&](Db& db) {
    AttemptWhere w = attemptWhere(account_sid, filter);
    return pageQuery<DeliveryAttempt>(
        db, kAttemptSelectCols, "attempts a", w.sql, static_cast<int>(w.is_text.size()), false,
        cursor, page_size, [&](Query& q) { bindWhere(q, w); },
        [](const Query& q) { return readAttempt(q, 1); });
  });
}

Result<AttemptSummary> SqliteStore::summarizeAttempts(std::string_view account_sid,
                                                      const AttemptFilter& filter) {
  return read<AttemptSummary>([&](Db& db) -> Result<AttemptSummary> {
    AttemptWhere w = attemptWhere(account_sid, filter);
    Query q = db.query(
        "SELECT COUNT(*), COALESCE(SUM(EXISTS(SELECT 1 FROM verifications v WHERE v.sid = "
        "a.verification_sid AND v.status = 'approved')), 0) FROM attempts a WHERE " +
        w.sql);
    bindWhere(q, w);
    auto row = q.step();
    if (!row) return fail(row.error());
    return AttemptSummary{q.integer(0), q.integer(1)};
  });
}

// ---- messaging configurations --------------------------------------------------------------

namespace {
constexpr const char* kMessagingConfigCols =
    "seq, account_sid, service_sid, country, messaging_service_sid, date_created, date_updated";
MessagingConfiguration readMessagingConfig(const Query& q) {
  return MessagingConfiguration{q.text(1), q.text(2),    q.text(3),
                                q.text(4), q.integer(5), q.integer(6)};
}
const std::string kSelectMessagingConfig = std::string("SELECT ") + kMessagingConfigCols +
                                           " FROM messaging_configs WHERE service_sid = ?1 AND "
                                           "country = ?2";
}  // namespace

Status SqliteStore::createMessagingConfig(const MessagingConfiguration& c) {
  return write([&](Db& db) -> Status {
    auto found = selectOne<MessagingConfiguration>(db, kSelectMessagingConfig, c.service_sid,
                                                   c.country, readMessagingConfig);
    if (!found) return fail(found.error());
    if (*found)
      return fail(Error::of(ErrorKind::kDuplicateMessagingConfiguration,
                            "A Messaging Configuration already exists for country " + c.country));
    Query q = db.query(
        "INSERT INTO messaging_configs(account_sid, service_sid, country, messaging_service_sid, "
        "date_created, date_updated) VALUES(?1, ?2, ?3, ?4, ?5, ?6)");
    q.bind(1, c.account_sid).bind(2, c.service_sid).bind(3, c.country);
    q.bind(4, c.messaging_service_sid).bind(5, static_cast<std::int64_t>(c.date_created));
    return q.bind(6, static_cast<std::int64_t>(c.date_updated)).run();
  });
}

Result<std::optional<MessagingConfiguration>> SqliteStore::getMessagingConfig(
    std::string_view service_sid, std::string_view country) {
  return read<std::optional<MessagingConfiguration>>([&](Db& db) {
    return selectOne<MessagingConfiguration>(db, kSelectMessagingConfig, service_sid, country,
                                             readMessagingConfig);
  });
}

Result<Page<MessagingConfiguration>> SqliteStore::listMessagingConfigs(std::string_view service_sid,
                                                                       PageCursor cursor,
                                                                       int page_size) {
  return read<Page<MessagingConfiguration>>([&](Db& db) {
    return pageQuery<MessagingConfiguration>(
        db, kMessagingConfigCols, "messaging_configs", "service_sid = ?1", 1, true, cursor,
        page_size, [&](Query& q) { q.bind(1, service_sid); }, readMessagingConfig);
  });
}

Result<MessagingConfiguration> SqliteStore::updateMessagingConfig(
    std::string_view service_sid, std::string_view country, std::string_view messaging_service_sid,
    UnixTime now) {
  MessagingConfiguration out;
  Status st = write([&](Db& db) -> Status {
    Query u = db.query(
        "UPDATE messaging_configs SET messaging_service_sid = ?1, date_updated = ?2 WHERE "
        "service_sid = ?3 AND country = ?4");
    u.bind(1, messaging_service_sid).bind(2, static_cast<std::int64_t>(now));
    if (auto s = u.bind(3, service_sid).bind(4, country).run(); !s) return s;
    if (db.changes() == 0) return fail(Error::notFound());
    auto found = selectOne<MessagingConfiguration>(db, kSelectMessagingConfig, service_sid, country,
                                                   readMessagingConfig);
    if (!found) return fail(found.error());
    out = **found;
    return {};
  });
  if (!st) return fail(st.error());
  return out;
}

Status SqliteStore::deleteMessagingConfig(std::string_view service_sid, std::string_view country) {
  return write([&](Db& db) -> Status {
    Query q = db.query("DELETE FROM messaging_configs WHERE service_sid = ?1 AND country = ?2");
    if (auto s = q.bind(1, service_sid).bind(2, country).run(); !s) return s;
    if (db.changes() == 0) return fail(Error::notFound());
    return {};
  });
}

}  // namespace verifyd
