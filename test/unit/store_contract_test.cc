// The store contracts (core/ports/stores.h and factor_store.h), written once and run against
// every backend: SQLite always, PostgreSQL when VERIFYD_TEST_POSTGRES_URL names a server (each
// test then gets a database of its own, dropped afterwards). test/storage/run_pg_contract.sh
// starts a throwaway server and runs the PostgreSQL instances (`--gtest_filter=*Postgres*`).
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "verifyd/storage/postgres/pg_store.h"
#include "verifyd/storage/sqlite/sqlite_store.h"

namespace verifyd {
namespace {

const std::string kAccount = "AC" + std::string(32, 'a');
const std::string kOtherAccount = "AC" + std::string(32, 'b');
constexpr UnixTime kNow = 1700000000;

std::string sidN(const char* prefix, int n) {
  std::string digits = std::to_string(n);
  return prefix + std::string(32 - digits.size(), '0') + digits;
}

std::string allBytes() {
  std::string s;
  for (int i = 0; i < 256; ++i) s.push_back(static_cast<char>(i));
  return s;
}

// ---- backends ---------------------------------------------------------------------------------

// One database for the test; open() gives a store on it (again after a reopen, or a second
// node where the backend allows several).
class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::unique_ptr<Store> open() = 0;
};

class SqliteBackend final : public Backend {
 public:
  SqliteBackend() {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "verifyd-contract-XXXXXX").string();
    dir_ = ::mkdtemp(tmpl.data());
  }
  ~SqliteBackend() override { std::filesystem::remove_all(dir_); }
  std::unique_ptr<Store> open() override {
    auto s = SqliteStore::open(dir_ + "/db", true);
    if (!s) return nullptr;
    return std::move(*s);
  }

 private:
  std::string dir_;
};

// A short-lived libpq connection for setting up and inspecting test databases.
class PgAdmin {
 public:
  explicit PgAdmin(const std::string& url) : c_(PQconnectdb(url.c_str())) {}
  ~PgAdmin() { PQfinish(c_); }
  bool ok() const { return PQstatus(c_) == CONNECTION_OK; }
  std::string error() const { return PQerrorMessage(c_); }
  // Runs `sql`; returns the first column of the first row ("" when none); "ERROR: …" on failure.
  std::string exec(const std::string& sql) {
    PGresult* r = PQexec(c_, sql.c_str());
    std::string out;
    auto st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
      out = std::string("ERROR: ") + PQresultErrorMessage(r);
    else if (PQntuples(r) > 0 && PQnfields(r) > 0)
      out = PQgetvalue(r, 0, 0);
    PQclear(r);
    return out;
  }

 private:
  PGconn* c_;
};

// `url` (postgresql://… or key=value) with another database.
std::string withDatabase(const std::string& url, const std::string& db) {
  auto scheme = url.find("://");
  if (scheme == std::string::npos) return url + " dbname=" + db;
  auto path = url.find('/', scheme + 3);
  auto query = url.find('?', scheme + 3);
  if (path == std::string::npos || (query != std::string::npos && path > query)) {
    std::string out = url;
    out.insert(query == std::string::npos ? out.size() : query, "/" + db);
    return out;
  }
  return url.substr(0, path + 1) + db + (query == std::string::npos ? "" : url.substr(query));
}

const char* postgresUrl() { return std::getenv("VERIFYD_TEST_POSTGRES_URL"); }

class PgBackend final : public Backend {
 public:
  explicit PgBackend(std::string server_url, PgStoreOptions options = {})
      : server_url_(std::move(server_url)), options_(options) {
    std::random_device rd;
    std::uniform_int_distribution<unsigned> hex(0, 15);
    db_ = "t_";
    for (int i = 0; i < 16; ++i) db_ += "0123456789abcdef"[hex(rd)];
    PgAdmin admin(server_url_);
    if (!admin.ok()) {
      error_ = "cannot connect to " + server_url_ + ": " + admin.error();
      return;
    }
    std::string r = admin.exec("CREATE DATABASE " + db_);
    if (r.rfind("ERROR", 0) == 0) error_ = r;
    url_ = withDatabase(server_url_, db_);
  }
  ~PgBackend() override {
    PgAdmin admin(server_url_);
    if (admin.ok()) (void)admin.exec("DROP DATABASE IF EXISTS " + db_ + " WITH (FORCE)");
  }
  std::unique_ptr<Store> open() override {
    auto s = PgStore::open(url_, options_);
    if (!s) {
      ADD_FAILURE() << "PgStore::open: " << s.error().message;
      return nullptr;
    }
    return std::move(*s);
  }
  std::unique_ptr<PgStore> openPg(PgStoreOptions options) {
    auto s = PgStore::open(url_, options);
    if (!s) {
      ADD_FAILURE() << "PgStore::open: " << s.error().message;
      return nullptr;
    }
    return std::move(*s);
  }
  const std::string& url() const { return url_; }
  const std::string& error() const { return error_; }

 private:
  std::string server_url_, db_, url_, error_;
  PgStoreOptions options_;
};

struct BackendParam {
  std::string name;
  std::function<std::unique_ptr<Backend>(std::string* skip)> make;
};

void PrintTo(const BackendParam& p, std::ostream* os) { *os << p.name; }

std::unique_ptr<Backend> makeSqlite(std::string*) { return std::make_unique<SqliteBackend>(); }

std::unique_ptr<Backend> makePostgres(std::string* skip) {
  const char* url = postgresUrl();
  if (!url || !*url) {
    *skip = "VERIFYD_TEST_POSTGRES_URL is not set (test/storage/run_pg_contract.sh sets it)";
    return nullptr;
  }
  auto b = std::make_unique<PgBackend>(url);
  if (!b->error().empty()) {
    ADD_FAILURE() << b->error();
    return nullptr;
  }
  return b;
}

// ---- records ----------------------------------------------------------------------------------

Service service(int n, const std::string& account = kAccount) {
  Service s;
  s.sid = sidN("VA", n);
  s.account_sid = account;
  s.settings.friendly_name = "svc " + std::to_string(n);
  s.settings.passkeys_rp_origins = std::vector<std::string>{"a.example", "b.example"};
  s.date_created = s.date_updated = kNow + n;
  return s;
}

Verification verification(const std::string& sid, const std::string& service_sid,
                          const std::string& to, UnixTime now) {
  Verification v;
  v.sid = sid;
  v.service_sid = service_sid;
  v.account_sid = kAccount;
  v.to = to;
  v.channel = "sms";
  v.code_hash = std::string(32, '\1');
  v.code_seed = std::string(16, '\2');
  v.send_attempts.push_back(SendAttempt{"VL" + sid.substr(2), "sms", now});
  v.date_created = v.date_updated = now;
  v.expires_at = now + 600;
  return v;
}

OutboxMessage message(const Verification& v, UnixTime now) {
  return OutboxMessage{"MM" + v.sid.substr(2) + std::to_string(v.send_attempts.size()),
                       v.account_sid,
                       v.service_sid,
                       v.sid,
                       v.to,
                       v.channel,
                       "Your code is 123456",
                       now,
                       "123456"};
}

DeliveryAttempt attempt(const Verification& v, const std::string& sid, std::int64_t next_try_ms,
                        const std::string& country = "US") {
  DeliveryAttempt a;
  a.sid = sid;
  a.account_sid = v.account_sid;
  a.service_sid = v.service_sid;
  a.verification_sid = v.sid;
  a.channel = v.channel;
  a.to = v.to;
  a.country = country;
  a.locale = "en";
  a.payload_sealed = allBytes();
  a.next_try_ms = next_try_ms;
  a.date_created = a.date_updated = next_try_ms / 1000;
  return a;
}

using Decide = std::function<Result<StartWrite>(const std::optional<Verification>&)>;

// A new verification `sid` (with its message) unless one is pending; then a resend of it.
Decide newOrResend(const std::string& sid, const std::string& service_sid, const std::string& to,
                   UnixTime now) {
  return [=](const std::optional<Verification>& pending) -> Result<StartWrite> {
    if (pending) {
      Verification v = *pending;
      v.send_attempts.push_back(
          SendAttempt{"VL" + std::to_string(v.send_attempts.size()), "sms", now});
      v.date_updated = now;
      return StartWrite{v, false, message(v, now), std::nullopt};
    }
    Verification v = verification(sid, service_sid, to, now);
    return StartWrite{v, true, message(v, now), std::nullopt};
  };
}

Result<Verification> startWith(Store& s, const std::string& service_sid, const std::string& to,
                               UnixTime now, StartGuards guards, Decide decide) {
  std::promise<Result<Verification>> promise;
  auto future = promise.get_future();
  s.startAsync(service_sid, to, now, std::move(guards), std::move(decide),
               [&promise](Result<Verification> r) { promise.set_value(std::move(r)); });
  return future.get();
}

Result<Verification> approve(Store& s, const std::string& service_sid, const std::string& sid) {
  return s.mutate(VerificationKey{service_sid, sid, {}},
                  [](const Verification& cur) -> Result<Verification> {
                    Verification next = cur;
                    next.status = status::kApproved;
                    next.check_attempts++;
                    return next;
                  });
}

// ---- the fixture ------------------------------------------------------------------------------

class StoreContract : public ::testing::TestWithParam<BackendParam> {
 protected:
  void SetUp() override {
    std::string skip;
    backend_ = GetParam().make(&skip);
    if (!backend_) {
      if (!skip.empty()) GTEST_SKIP() << skip;
      FAIL() << "no backend";
    }
    store_ = backend_->open();
    ASSERT_TRUE(store_);
  }
  void TearDown() override {
    store_.reset();
    backend_.reset();
  }
  void reopen() {
    store_.reset();
    store_ = backend_->open();
    ASSERT_TRUE(store_);
  }
  Store& s() { return *store_; }

  // A new verification of `to` with a message and a delivery attempt due at `next_try_ms`.
  Verification seed(int n, const std::string& to, std::int64_t next_try_ms,
                    const std::string& country = "US", const std::string& channel = "sms") {
    Verification v = verification(sidN("VE", n), sidN("VA", 1), to, next_try_ms / 1000);
    v.channel = channel;
    DeliveryAttempt a = attempt(v, sidN("VL", n), next_try_ms, country);
    auto r = s().start(v.service_sid, v.to, next_try_ms / 1000,
                       [&](const std::optional<Verification>&) -> Result<StartWrite> {
                         return StartWrite{v, true, message(v, next_try_ms / 1000), a};
                       });
    EXPECT_TRUE(r) << (r ? "" : r.error().message);
    return v;
  }

  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Store> store_;
};

std::string paramName(const ::testing::TestParamInfo<BackendParam>& info) {
  return info.param.name;
}

INSTANTIATE_TEST_SUITE_P(Sqlite, StoreContract,
                         ::testing::Values(BackendParam{"sqlite", makeSqlite}), paramName);
INSTANTIATE_TEST_SUITE_P(Postgres, StoreContract,
                         ::testing::Values(BackendParam{"postgres", makePostgres}), paramName);

// ---- accounts and settings --------------------------------------------------------------------

TEST_P(StoreContract, AccountsKeysAndCredentials) {
  Account a{kAccount, "main", allBytes(), std::string("sealed\0token", 12), kNow};
  ASSERT_TRUE(s().createAccount(a));
  auto got = s().getAccount(kAccount);
  ASSERT_TRUE(got && *got);
  EXPECT_EQ((*got)->friendly_name, "main");
  EXPECT_EQ((*got)->auth_token_mac, allBytes());
  EXPECT_EQ((*got)->auth_token_sealed, std::string("sealed\0token", 12));
  EXPECT_EQ((*got)->date_created, kNow);
  EXPECT_FALSE(*s().getAccount(kOtherAccount));

  ApiKey k{sidN("SK", 1), kAccount, "key", std::string("\0mac\xff", 5), kNow};
  ASSERT_TRUE(s().createApiKey(k));
  auto ac = s().findCredential(kAccount);
  ASSERT_TRUE(ac && *ac);
  EXPECT_EQ((*ac)->account_sid, kAccount);
  EXPECT_EQ((*ac)->secret_mac, allBytes());
  auto sk = s().findCredential(k.sid);
  ASSERT_TRUE(sk && *sk);
  EXPECT_EQ((*sk)->account_sid, kAccount);
  EXPECT_EQ((*sk)->secret_mac, std::string("\0mac\xff", 5));
  EXPECT_FALSE(*s().findCredential(sidN("SK", 2)));
}

TEST_P(StoreContract, FailedWritesOfTheStorageAreUnavailable) {
  Account a{kAccount, "main", "mac", "sealed", kNow};
  ASSERT_TRUE(s().createAccount(a));
  auto dup = s().createAccount(a);
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().kind, ErrorKind::kUnavailable);
  // An API key of an account that does not exist.
  auto orphan = s().createApiKey(ApiKey{sidN("SK", 1), kOtherAccount, "k", "mac", kNow});
  ASSERT_FALSE(orphan);
  EXPECT_EQ(orphan.error().kind, ErrorKind::kUnavailable);
  EXPECT_FALSE(*s().findCredential(sidN("SK", 1)));
}

TEST_P(StoreContract, SettingsArePutAndReplaced) {
  EXPECT_FALSE(*s().getSetting("bootstrap"));
  ASSERT_TRUE(s().putSetting("bootstrap", "one"));
  ASSERT_TRUE(s().putSetting("bootstrap", "two"));
  ASSERT_TRUE(s().putSetting("other", ""));
  EXPECT_EQ(**s().getSetting("bootstrap"), "two");
  EXPECT_EQ(**s().getSetting("other"), "");
}

// ---- services ---------------------------------------------------------------------------------

TEST_P(StoreContract, ServicesSurviveReopenWithEverySetting) {
  Service sv = service(1);
  sv.settings.code_length = 9;
  sv.settings.totp_skew = 2;
  sv.settings.whatsapp_from = "whatsapp:+15017122661";
  sv.settings.tts_name = "Ünïcode ✓";
  sv.settings.psd2_enabled = true;
  ASSERT_TRUE(s().createService(sv));
  reopen();
  auto got = s().getService(kAccount, sv.sid);
  ASSERT_TRUE(got && *got);
  EXPECT_EQ((*got)->settings.code_length, 9);
  EXPECT_EQ((*got)->settings.totp_skew, 2);
  EXPECT_EQ((*got)->settings.whatsapp_from, "whatsapp:+15017122661");
  EXPECT_EQ((*got)->settings.tts_name, "Ünïcode ✓");
  EXPECT_TRUE((*got)->settings.psd2_enabled);
  EXPECT_FALSE((*got)->settings.totp_issuer);
  EXPECT_EQ((*got)->settings.passkeys_rp_origins->size(), 2u);
  EXPECT_EQ((*got)->date_created, kNow + 1);
  EXPECT_FALSE(*s().getService(kOtherAccount, sv.sid));
}

TEST_P(StoreContract, ServiceUpdatesAndDeletesAreSeenAtOnce) {
  ASSERT_TRUE(s().createService(service(1)));
  ASSERT_TRUE(*s().getService(kAccount, sidN("VA", 1)));
  auto updated = s().updateService(kAccount, sidN("VA", 1), [](Service& sv) -> Status {
    sv.settings.code_length = 4;
    sv.date_updated = kNow + 100;
    return {};
  });
  ASSERT_TRUE(updated);
  EXPECT_EQ(updated->settings.code_length, 4);
  auto got = *s().getService(kAccount, sidN("VA", 1));
  EXPECT_EQ(got->settings.code_length, 4);
  EXPECT_EQ(got->date_updated, kNow + 100);
  EXPECT_FALSE(*s().getService(kOtherAccount, sidN("VA", 1)));
  ASSERT_TRUE(s().deleteService(kAccount, sidN("VA", 1)));
  EXPECT_FALSE(*s().getService(kAccount, sidN("VA", 1)));
}

TEST_P(StoreContract, ServiceUpdateRefusedOrMissingWritesNothing) {
  ASSERT_TRUE(s().createService(service(1)));
  auto refused = s().updateService(kAccount, sidN("VA", 1), [](Service& sv) -> Status {
    sv.settings.code_length = 4;
    return fail(Error::invalid("CodeLength"));
  });
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_EQ((*s().getService(kAccount, sidN("VA", 1)))->settings.code_length, 6);
  auto missing = s().updateService(kAccount, sidN("VA", 2), [](Service&) -> Status { return {}; });
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().kind, ErrorKind::kNotFound);
  // Another account's service is missing too.
  auto foreign =
      s().updateService(kOtherAccount, sidN("VA", 1), [](Service&) -> Status { return {}; });
  ASSERT_FALSE(foreign);
  EXPECT_EQ(foreign.error().kind, ErrorKind::kNotFound);
  auto del = s().deleteService(kOtherAccount, sidN("VA", 1));
  ASSERT_FALSE(del);
  EXPECT_EQ(del.error().kind, ErrorKind::kNotFound);
}

TEST_P(StoreContract, DeletingAServiceDeletesWhatBelongsToIt) {
  ASSERT_TRUE(s().createService(service(1)));
  ASSERT_TRUE(s().createService(service(2)));
  Verification v = seed(1, "+15017122661", kNow * 1000);
  RateLimit rl{sidN("RK", 1), sidN("VA", 1), kAccount, "end_user_ip", std::nullopt, kNow, kNow};
  ASSERT_TRUE(s().createRateLimit(rl, 10));
  ASSERT_TRUE(s().createBucket(
      Bucket{sidN("BL", 1), rl.sid, sidN("VA", 1), kAccount, 5, 60, kNow, kNow}, 10));
  ASSERT_TRUE(s().createMessagingConfig(
      MessagingConfiguration{kAccount, sidN("VA", 1), "US", sidN("MG", 1), kNow, kNow}));
  ASSERT_TRUE(s().createMessagingConfig(
      MessagingConfiguration{kAccount, sidN("VA", 2), "US", sidN("MG", 2), kNow, kNow}));

  ASSERT_TRUE(s().deleteService(kAccount, sidN("VA", 1)));
  EXPECT_FALSE(*s().getVerification(VerificationKey{sidN("VA", 1), v.sid, {}}));
  EXPECT_FALSE(*s().getRateLimit(sidN("VA", 1), rl.sid));
  EXPECT_FALSE(*s().getBucket(rl.sid, sidN("BL", 1)));
  EXPECT_TRUE(s().rateLimitsOfService(sidN("VA", 1))->empty());
  EXPECT_FALSE(*s().getMessagingConfig(sidN("VA", 1), "US"));
  EXPECT_TRUE(*s().getMessagingConfig(sidN("VA", 2), "US"));
  EXPECT_TRUE(*s().getService(kAccount, sidN("VA", 2)));
  // The dev outbox and the delivery records stay.
  EXPECT_EQ(s().listMessages(kAccount, "", {}, 10)->items.size(), 1u);
  EXPECT_TRUE(*s().getAttempt(kAccount, sidN("VL", 1)));
}

TEST_P(StoreContract, PagesForwardAndBack) {
  for (int i = 1; i <= 7; ++i) ASSERT_TRUE(s().createService(service(i)));
  ASSERT_TRUE(s().createService(service(8, kOtherAccount)));
  PageCursor c;
  std::vector<std::string> seen;
  Page<Service> p;
  int pages = 0;
  do {
    p = *s().listServices(kAccount, c, 3);
    if (pages == 0) {
      EXPECT_FALSE(p.has_previous);
    }
    for (auto& sv : p.items) seen.push_back(sv.sid);
    c = PageCursor{PageCursor::Direction::kAfter, p.last_seq};
    ++pages;
  } while (p.has_next);
  EXPECT_EQ(pages, 3);
  ASSERT_EQ(seen.size(), 7u);
  for (int i = 1; i <= 7; ++i) EXPECT_EQ(seen[static_cast<std::size_t>(i - 1)], sidN("VA", i));
  EXPECT_TRUE(p.has_previous);
  // Back from the last page (item 7) gives items 4..6.
  auto back =
      *s().listServices(kAccount, PageCursor{PageCursor::Direction::kBefore, p.first_seq}, 3);
  ASSERT_EQ(back.items.size(), 3u);
  EXPECT_EQ(back.items.front().sid, sidN("VA", 4));
  EXPECT_EQ(back.items.back().sid, sidN("VA", 6));
  EXPECT_TRUE(back.has_next);
  EXPECT_TRUE(back.has_previous);
  // And back again to the first page, which has nothing before it.
  auto first =
      *s().listServices(kAccount, PageCursor{PageCursor::Direction::kBefore, back.first_seq}, 3);
  ASSERT_EQ(first.items.size(), 3u);
  EXPECT_EQ(first.items.front().sid, sidN("VA", 1));
  EXPECT_FALSE(first.has_previous);
  EXPECT_TRUE(first.has_next);
  EXPECT_LT(first.first_seq, first.last_seq);
  // An empty page.
  auto none = *s().listServices(kOtherAccount + "x", {}, 3);
  EXPECT_TRUE(none.items.empty());
  EXPECT_FALSE(none.has_next);
  EXPECT_EQ(none.first_seq, 0);
}

TEST_P(StoreContract, ConcurrentWritesAndAFailureStaysAlone) {
  ASSERT_TRUE(s().createService(service(1)));
  std::atomic<int> ok{0}, failed{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 64; ++i)
    threads.emplace_back([&, i] {
      // Every 8th writer reuses an existing SID and must fail without undoing another write.
      Service sv = service(i % 8 == 0 ? 1 : 100 + i);
      if (s().createService(sv))
        ++ok;
      else
        ++failed;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 56);
  EXPECT_EQ(failed.load(), 8);
  EXPECT_EQ(s().listServices(kAccount, {}, 1000)->items.size(), 57u);
}

// ---- verifications ----------------------------------------------------------------------------

TEST_P(StoreContract, StartWritesTheVerificationItsMessageAndItsAttempt) {
  ASSERT_TRUE(s().createService(service(1)));
  Verification v = verification(sidN("VE", 1), sidN("VA", 1), "+15017122661", kNow);
  v.code_hash = allBytes();
  v.code_seed = std::string("\0seed", 5);
  v.amount = "€10";
  v.fraud_prefix = "+1501";
  DeliveryAttempt a = attempt(v, sidN("VL", 1), kNow * 1000);
  std::atomic<bool> decided{false};
  auto r = s().start(v.service_sid, v.to, kNow,
                     [&](const std::optional<Verification>& pending) -> Result<StartWrite> {
                       EXPECT_FALSE(pending);
                       decided = true;
                       return StartWrite{v, true, message(v, kNow), a};
                     });
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(decided);
  EXPECT_EQ(r->sid, v.sid);
  for (const VerificationKey& key :
       {VerificationKey{v.service_sid, v.sid, {}}, VerificationKey{v.service_sid, {}, v.to}}) {
    auto got = *s().getVerification(key);
    ASSERT_TRUE(got);
    EXPECT_EQ(got->code_hash, allBytes());
    EXPECT_EQ(got->code_seed, std::string("\0seed", 5));
    EXPECT_EQ(got->amount, "€10");
    EXPECT_FALSE(got->payee);
    EXPECT_EQ(got->fraud_prefix, "+1501");
    EXPECT_EQ(got->status, status::kPending);
    EXPECT_EQ(got->expires_at, kNow + 600);
    ASSERT_EQ(got->send_attempts.size(), 1u);
    EXPECT_EQ(got->send_attempts[0].time, kNow);
    EXPECT_EQ(got->send_attempts[0].channel, "sms");
  }
  EXPECT_FALSE(*s().getVerification(VerificationKey{sidN("VA", 2), v.sid, {}}));
  EXPECT_FALSE(*s().getVerification(VerificationKey{v.service_sid, {}, "+15017122662"}));
  auto msgs = *s().listMessages(kAccount, v.to, {}, 10);
  ASSERT_EQ(msgs.items.size(), 1u);
  EXPECT_EQ(msgs.items[0].verification_sid, v.sid);
  EXPECT_EQ(msgs.items[0].code, "123456");
  EXPECT_EQ(msgs.items[0].body, "Your code is 123456");
  auto got = *s().getAttempt(kAccount, a.sid);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->payload_sealed, allBytes());
  EXPECT_EQ(got->message_status, message_status::kQueued);
  EXPECT_EQ(got->next_try_ms, kNow * 1000);
  EXPECT_EQ(got->lease_until_ms, 0);
  EXPECT_FALSE(got->converted);
  EXPECT_FALSE(*s().getAttempt(kOtherAccount, a.sid));
}

TEST_P(StoreContract, AResendUpdatesOnlyWhatAResendChanges) {
  ASSERT_TRUE(s().createService(service(1)));
  const std::string to = "+15017122661";
  ASSERT_TRUE(startWith(s(), sidN("VA", 1), to, kNow, {},
                        newOrResend(sidN("VE", 1), sidN("VA", 1), to, kNow)));
  auto r = s().start(sidN("VA", 1), to, kNow + 30,
                     [&](const std::optional<Verification>& pending) -> Result<StartWrite> {
                       EXPECT_TRUE(pending);
                       if (!pending) return fail(Error::internal("no pending"));
                       EXPECT_EQ(pending->sid, sidN("VE", 1));
                       Verification v = *pending;
                       v.channel = "call";
                       v.code_hash = std::string(32, '\7');
                       v.send_attempts.push_back(SendAttempt{"VL2", "call", kNow + 30});
                       v.date_updated = kNow + 30;
                       // Not a resend's to change: the store keeps the stored ones.
                       v.check_attempts = 5;
                       v.status = status::kCanceled;
                       v.expires_at = kNow + 9999;
                       return StartWrite{v, false, std::nullopt, std::nullopt};
                     });
  ASSERT_TRUE(r);
  auto got = *s().getVerification(VerificationKey{sidN("VA", 1), sidN("VE", 1), {}});
  ASSERT_TRUE(got);
  EXPECT_EQ(got->channel, "call");
  EXPECT_EQ(got->code_hash, std::string(32, '\7'));
  EXPECT_EQ(got->send_attempts.size(), 2u);
  EXPECT_EQ(got->date_updated, kNow + 30);
  EXPECT_EQ(got->check_attempts, 0);
  EXPECT_EQ(got->status, status::kPending);
  EXPECT_EQ(got->expires_at, kNow + 600);
  EXPECT_EQ(s().listMessages(kAccount, to, {}, 10)->items.size(), 1u);
}

TEST_P(StoreContract, OnlyAnUnexpiredPendingVerificationIsPending) {
  ASSERT_TRUE(s().createService(service(1)));
  const std::string to = "+15017122661";
  ASSERT_TRUE(startWith(s(), sidN("VA", 1), to, kNow, {},
                        newOrResend(sidN("VE", 1), sidN("VA", 1), to, kNow)));
  // Expired at kNow + 600.
  std::optional<Verification> seen;
  ASSERT_TRUE(s().start(sidN("VA", 1), to, kNow + 600,
                        [&](const std::optional<Verification>& pending) -> Result<StartWrite> {
                          seen = pending;
                          Verification v =
                              verification(sidN("VE", 2), sidN("VA", 1), to, kNow + 600);
                          return StartWrite{v, true, std::nullopt, std::nullopt};
                        }));
  EXPECT_FALSE(seen);
  // The latest for `To` is the new one; approving it ends its pending state.
  EXPECT_EQ((*s().getVerification(VerificationKey{sidN("VA", 1), {}, to}))->sid, sidN("VE", 2));
  ASSERT_TRUE(approve(s(), sidN("VA", 1), sidN("VE", 2)));
  auto r = s().start(sidN("VA", 1), to, kNow + 601,
                     [&](const std::optional<Verification>& pending) -> Result<StartWrite> {
                       seen = pending;
                       return fail(Error::of(ErrorKind::kFeatureNotSupported, "no"));
                     });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::kFeatureNotSupported);
  EXPECT_FALSE(seen);
}

TEST_P(StoreContract, ARefusedStartWritesNothing) {
  ASSERT_TRUE(s().createService(service(1)));
  const std::string to = "+15017122661";
  Verification v = verification(sidN("VE", 1), sidN("VA", 1), to, kNow);
  auto r = s().start(sidN("VA", 1), to, kNow,
                     [&](const std::optional<Verification>&) -> Result<StartWrite> {
                       return fail(Error::of(ErrorKind::kSmsToLandline, "landline"));
                     });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::kSmsToLandline);
  // A write that fails in the store (a duplicate SID) leaves nothing either, message included.
  ASSERT_TRUE(s().start(sidN("VA", 1), to, kNow,
                        [&](const std::optional<Verification>&) -> Result<StartWrite> {
                          return StartWrite{v, true, std::nullopt, std::nullopt};
                        }));
  Verification dup = verification(sidN("VE", 1), sidN("VA", 1), "+15017122662", kNow);
  auto failed = s().start(
      sidN("VA", 1), dup.to, kNow, [&](const std::optional<Verification>&) -> Result<StartWrite> {
        return StartWrite{dup, true, message(dup, kNow), attempt(dup, sidN("VL", 9), 0)};
      });
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().kind, ErrorKind::kUnavailable);
  EXPECT_TRUE(s().listMessages(kAccount, "", {}, 10)->items.empty());
  EXPECT_FALSE(*s().getAttempt(kAccount, sidN("VL", 9)));
  EXPECT_FALSE(*s().getVerification(VerificationKey{sidN("VA", 1), {}, dup.to}));
}

TEST_P(StoreContract, MutateChangesStatusAttemptsAndDateOnly) {
  ASSERT_TRUE(s().createService(service(1)));
  const std::string to = "+15017122661";
  ASSERT_TRUE(startWith(s(), sidN("VA", 1), to, kNow, {},
                        newOrResend(sidN("VE", 1), sidN("VA", 1), to, kNow)));
  auto r = s().mutate(VerificationKey{sidN("VA", 1), {}, to},
                      [](const Verification& cur) -> Result<Verification> {
                        Verification next = cur;
                        next.status = status::kCanceled;
                        next.check_attempts = 3;
                        next.date_updated = kNow + 5;
                        next.channel = "email";  // not a mutation's to change
                        return next;
                      });
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, status::kCanceled);
  auto got = *s().getVerification(VerificationKey{sidN("VA", 1), sidN("VE", 1), {}});
  EXPECT_EQ(got->status, status::kCanceled);
  EXPECT_EQ(got->check_attempts, 3);
  EXPECT_EQ(got->date_updated, kNow + 5);
  EXPECT_EQ(got->channel, "sms");

  auto missing = s().mutate(VerificationKey{sidN("VA", 1), sidN("VE", 2), {}},
                            [](const Verification& cur) -> Result<Verification> { return cur; });
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().kind, ErrorKind::kNotFound);
  auto wrong_service =
      s().mutate(VerificationKey{sidN("VA", 2), sidN("VE", 1), {}},
                 [](const Verification& cur) -> Result<Verification> { return cur; });
  ASSERT_FALSE(wrong_service);
  EXPECT_EQ(wrong_service.error().kind, ErrorKind::kNotFound);
  auto refused = s().mutate(VerificationKey{sidN("VA", 1), sidN("VE", 1), {}},
                            [](const Verification&) -> Result<Verification> {
                              return fail(Error::of(ErrorKind::kMaxCheckAttempts, "max"));
                            });
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().kind, ErrorKind::kMaxCheckAttempts);
  EXPECT_EQ((*s().getVerification(VerificationKey{sidN("VA", 1), sidN("VE", 1), {}}))->status,
            status::kCanceled);
}

TEST_P(StoreContract, StartAndMutateAreAtomicUnderContention) {
  ASSERT_TRUE(s().createService(service(1)));
  Verification v = verification(sidN("VE", 1), sidN("VA", 1), "+15017122661", kNow);
  ASSERT_TRUE(s().start(v.service_sid, v.to, kNow,
                        [&](const std::optional<Verification>& pending) -> Result<StartWrite> {
                          EXPECT_FALSE(pending);
                          return StartWrite{v, true, std::nullopt, std::nullopt};
                        }));
  std::vector<std::thread> threads;
  for (int i = 0; i < 32; ++i)
    threads.emplace_back([&, i] {
      // Half by `To` (the latest), half by SID.
      VerificationKey key = i % 2 ? VerificationKey{v.service_sid, {}, v.to}
                                  : VerificationKey{v.service_sid, v.sid, {}};
      auto r = s().mutate(key, [](const Verification& cur) -> Result<Verification> {
        Verification next = cur;
        next.check_attempts++;
        return next;
      });
      EXPECT_TRUE(r) << r.error().message;
    });
  for (auto& t : threads) t.join();
  auto got = *s().getVerification(VerificationKey{v.service_sid, v.sid, {}});
  ASSERT_TRUE(got);
  EXPECT_EQ(got->check_attempts, 32);
}

TEST_P(StoreContract, ConcurrentStartsForOneNumberMakeOneVerification) {
  ASSERT_TRUE(s().createService(service(1)));
  const std::string to = "+15017122661";
  std::vector<std::thread> threads;
  std::atomic<int> created{0};
  for (int i = 0; i < 16; ++i)
    threads.emplace_back([&, i] {
      auto decide = newOrResend(sidN("VE", 100 + i), sidN("VA", 1), to, kNow + i);
      auto r = startWith(s(), sidN("VA", 1), to, kNow + i, {},
                         [&, decide](const std::optional<Verification>& p) -> Result<StartWrite> {
                           auto w = decide(p);
                           return w;
                         });
      EXPECT_TRUE(r) << r.error().message;
      if (r && r->sid == sidN("VE", 100 + i) && r->send_attempts.size() == 1) ++created;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(created.load(), 1);
  auto got = *s().getVerification(VerificationKey{sidN("VA", 1), {}, to});
  ASSERT_TRUE(got);
  EXPECT_EQ(got->send_attempts.size(), 16u);
  EXPECT_EQ(s().listMessages(kAccount, to, {}, 100)->items.size(), 16u);
}

TEST_P(StoreContract, ChecksAndResendsOfOneNumberInterleaveSafely) {
  ASSERT_TRUE(s().createService(service(1)));
  const std::string to = "+15017122661";
  ASSERT_TRUE(startWith(s(), sidN("VA", 1), to, kNow, {},
                        newOrResend(sidN("VE", 1), sidN("VA", 1), to, kNow)));
  std::vector<std::thread> threads;
  for (int i = 0; i < 24; ++i)
    threads.emplace_back([&, i] {
      if (i % 2) {
        auto r = startWith(s(), sidN("VA", 1), to, kNow + 1, {},
                           newOrResend(sidN("VE", 50 + i), sidN("VA", 1), to, kNow + 1));
        EXPECT_TRUE(r) << r.error().message;
      } else {
        auto r = s().mutate(VerificationKey{sidN("VA", 1), {}, to},
                            [](const Verification& cur) -> Result<Verification> {
                              Verification next = cur;
                              next.check_attempts++;
                              return next;
                            });
        EXPECT_TRUE(r) << r.error().message;
      }
    });
  for (auto& t : threads) t.join();
  auto got = *s().getVerification(VerificationKey{sidN("VA", 1), {}, to});
  ASSERT_TRUE(got);
  EXPECT_EQ(got->sid, sidN("VE", 1));
  EXPECT_EQ(got->check_attempts, 12);
  EXPECT_EQ(got->send_attempts.size(), 13u);
}

TEST_P(StoreContract, CompletionsRunAfterTheCommit) {
  ASSERT_TRUE(s().createService(service(1)));
  const std::string to = "+15017122661";
  std::promise<bool> seen;
  s().startAsync(sidN("VA", 1), to, kNow, {}, newOrResend(sidN("VE", 1), sidN("VA", 1), to, kNow),
                 [&](Result<Verification> r) {
                   // Another connection sees the write already.
                   auto got = s().getVerification(VerificationKey{sidN("VA", 1), {}, to});
                   seen.set_value(r && got && *got);
                 });
  EXPECT_TRUE(seen.get_future().get());
  std::promise<bool> checked;
  s().mutateAsync(
      VerificationKey{sidN("VA", 1), sidN("VE", 1), {}},
      [](const Verification& cur) -> Result<Verification> {
        Verification next = cur;
        next.status = status::kApproved;
        return next;
      },
      [&](Result<Verification> r) {
        auto got = s().getVerification(VerificationKey{sidN("VA", 1), sidN("VE", 1), {}});
        checked.set_value(r && got && *got && (*got)->status == status::kApproved);
      });
  EXPECT_TRUE(checked.get_future().get());
}

// ---- start guards -------------------------------------------------------------------------

StartGuards bucketGuard(int max, int interval, const std::string& key) {
  StartGuards g;
  g.charges.push_back(RateCharge{sidN("BL", 1), "end_user_ip", key, max, interval});
  return g;
}

TEST_P(StoreContract, RateLimitBucketsRefuseWhenFullAndWriteNothing) {
  ASSERT_TRUE(s().createService(service(1)));
  auto go = [&](int n, UnixTime now, const std::string& key) {
    std::string to = "+1501712" + std::to_string(2000 + n);
    return startWith(s(), sidN("VA", 1), to, now, bucketGuard(2, 60, key),
                     newOrResend(sidN("VE", n), sidN("VA", 1), to, now));
  };
  ASSERT_TRUE(go(1, kNow, "10.0.0.1"));
  ASSERT_TRUE(go(2, kNow + 10, "10.0.0.1"));
  auto full = go(3, kNow + 20, "10.0.0.1");
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error().kind, ErrorKind::kRateLimited);
  EXPECT_EQ(full.error().param, "end_user_ip");
  EXPECT_EQ(full.error().retry_after, 40);  // the first start leaves the window at kNow + 60
  EXPECT_FALSE(*s().getVerification(VerificationKey{sidN("VA", 1), {}, "+15017122003"}));
  EXPECT_EQ(s().listMessages(kAccount, "", {}, 10)->items.size(), 2u);
  // Another key has its own count; the refused start counted nothing.
  ASSERT_TRUE(go(4, kNow + 20, "10.0.0.2"));
  auto still = go(5, kNow + 59, "10.0.0.1");
  ASSERT_FALSE(still);
  EXPECT_EQ(still.error().retry_after, 1);
  // The window slides.
  ASSERT_TRUE(go(6, kNow + 60, "10.0.0.1"));
  EXPECT_FALSE(go(7, kNow + 61, "10.0.0.1"));
  ASSERT_TRUE(go(8, kNow + 70, "10.0.0.1"));
}

TEST_P(StoreContract, ConcurrentStartsNeverOverfillABucket) {
  ASSERT_TRUE(s().createService(service(1)));
  std::atomic<int> ok{0}, limited{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 12; ++i)
    threads.emplace_back([&, i] {
      std::string to = "+1501712" + std::to_string(3000 + i);
      auto r = startWith(s(), sidN("VA", 1), to, kNow, bucketGuard(5, 3600, "key"),
                         newOrResend(sidN("VE", i + 1), sidN("VA", 1), to, kNow));
      if (r)
        ++ok;
      else if (r.error().kind == ErrorKind::kRateLimited)
        ++limited;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 5);
  EXPECT_EQ(limited.load(), 7);
}

TEST_P(StoreContract, SendsToADestinationAreLimitedAcrossVerifications) {
  ASSERT_TRUE(s().createService(service(1)));
  const std::string to = "+15017122661";
  StartGuards g;
  g.max_destination_sends = 2;
  g.destination_window = 600;
  ASSERT_TRUE(startWith(s(), sidN("VA", 1), to, kNow, g,
                        newOrResend(sidN("VE", 1), sidN("VA", 1), to, kNow)));
  // A new verification (the first was canceled) still counts the first's send.
  ASSERT_TRUE(s().mutate(VerificationKey{sidN("VA", 1), {}, to},
                         [](const Verification& cur) -> Result<Verification> {
                           Verification next = cur;
                           next.status = status::kCanceled;
                           return next;
                         }));
  ASSERT_TRUE(startWith(s(), sidN("VA", 1), to, kNow + 10, g,
                        newOrResend(sidN("VE", 2), sidN("VA", 1), to, kNow + 10)));
  auto r = startWith(s(), sidN("VA", 1), to, kNow + 20, g,
                     newOrResend(sidN("VE", 3), sidN("VA", 1), to, kNow + 20));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::kMaxSendAttempts);
  EXPECT_EQ(r.error().retry_after, 580);
  // Another service's sends are its own.
  ASSERT_TRUE(s().createService(service(2)));
  ASSERT_TRUE(startWith(s(), sidN("VA", 2), to, kNow + 20, g,
                        newOrResend(sidN("VE", 4), sidN("VA", 2), to, kNow + 20)));
  ASSERT_TRUE(startWith(s(), sidN("VA", 1), to, kNow + 601, g,
                        newOrResend(sidN("VE", 5), sidN("VA", 1), to, kNow + 601)));
}

TEST_P(StoreContract, PendingVerificationsPerNumberAreLimitedAcrossServices) {
  for (int i = 1; i <= 3; ++i) ASSERT_TRUE(s().createService(service(i)));
  const std::string to = "+15017122661";
  StartGuards g;
  g.max_pending_per_number = 2;
  g.account_sid = kAccount;
  ASSERT_TRUE(startWith(s(), sidN("VA", 1), to, kNow, g,
                        newOrResend(sidN("VE", 1), sidN("VA", 1), to, kNow)));
  ASSERT_TRUE(startWith(s(), sidN("VA", 2), to, kNow, g,
                        newOrResend(sidN("VE", 2), sidN("VA", 2), to, kNow)));
  auto r = startWith(s(), sidN("VA", 3), to, kNow, g,
                     newOrResend(sidN("VE", 3), sidN("VA", 3), to, kNow));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::kTooManyPending);
  // A resend is not a new verification.
  ASSERT_TRUE(startWith(s(), sidN("VA", 1), to, kNow + 1, g,
                        newOrResend(sidN("VE", 4), sidN("VA", 1), to, kNow + 1)));
  // Another account's verifications do not count; expired ones do not either.
  g.account_sid = kOtherAccount;
  ASSERT_TRUE(startWith(s(), sidN("VA", 3), to, kNow, g,
                        newOrResend(sidN("VE", 5), sidN("VA", 3), to, kNow)));
  g.account_sid = kAccount;
  ASSERT_TRUE(s().deleteService(kAccount, sidN("VA", 3)));
  ASSERT_TRUE(s().createService(service(3)));
  ASSERT_TRUE(startWith(s(), sidN("VA", 3), to, kNow + 600, g,
                        newOrResend(sidN("VE", 6), sidN("VA", 3), to, kNow + 600)));
}

FraudCheck fraudCheck(const std::string& prefix) {
  FraudCheck f;
  f.account_sid = kAccount;
  f.prefix = prefix;
  f.min_unconverted = 3;
  return f;
}

TEST_P(StoreContract, FraudGuardBlocksAnAnomalousPrefixAndKeepsTheBlock) {
  ASSERT_TRUE(s().createService(service(1)));
  StartGuards g;
  g.fraud = fraudCheck("+2250700");
  auto go = [&](int n, UnixTime now) {
    std::string to = "+22507000" + std::to_string(1000 + n);
    return startWith(s(), sidN("VA", 1), to, now, g,
                     newOrResend(sidN("VE", n), sidN("VA", 1), to, now));
  };
  ASSERT_TRUE(go(1, kNow));
  ASSERT_TRUE(go(2, kNow + 1));
  // The third unconverted send makes the prefix anomalous: blocked, and this start refused.
  auto r = go(3, kNow + 2);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::kFraudBlocked);
  EXPECT_FALSE(*s().getVerification(VerificationKey{sidN("VA", 1), sidN("VE", 3), {}}));
  auto blocks = *s().fraudBlocks(kAccount, kNow + 3);
  ASSERT_EQ(blocks.size(), 1u);
  EXPECT_EQ(blocks[0].prefix, "+2250700");
  EXPECT_EQ(blocks[0].blocked_until, kNow + 2 + 12 * 3600);
  EXPECT_EQ(blocks[0].date_created, kNow + 2);
  EXPECT_EQ(blocks[0].sends, 3);
  EXPECT_EQ(blocks[0].conversions, 0);
  EXPECT_TRUE(s().fraudBlocks(kOtherAccount, kNow + 3)->empty());
  EXPECT_TRUE(s().fraudBlocks(kAccount, kNow + 2 + 12 * 3600)->empty());
  // It holds for the next start; other prefixes are not concerned.
  auto again = go(4, kNow + 10);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().kind, ErrorKind::kFraudBlocked);
  StartGuards other;
  other.fraud = fraudCheck("+2250500");
  ASSERT_TRUE(startWith(s(), sidN("VA", 1), "+2250500001", kNow + 10, other,
                        newOrResend(sidN("VE", 9), sidN("VA", 1), "+2250500001", kNow + 10)));
  // Lifted: the prefix starts afresh.
  ASSERT_TRUE(s().liftFraudBlock(kAccount, "+2250700"));
  EXPECT_TRUE(s().fraudBlocks(kAccount, kNow + 20)->empty());
  ASSERT_TRUE(go(5, kNow + 20));
  ASSERT_TRUE(go(6, kNow + 21));
  auto missing = s().liftFraudBlock(kAccount, "+2250999");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().kind, ErrorKind::kNotFound);
}

TEST_P(StoreContract, ApprovalsCountAsConversionsForFraudGuard) {
  ASSERT_TRUE(s().createService(service(1)));
  StartGuards g;
  g.fraud = fraudCheck("+2250700");
  for (int n = 1; n <= 8; ++n) {
    std::string to = "+22507000" + std::to_string(1000 + n);
    Verification v = verification(sidN("VE", n), sidN("VA", 1), to, kNow + n);
    v.fraud_prefix = "+2250700";
    auto r = startWith(s(), sidN("VA", 1), to, kNow + n, g,
                       [&](const std::optional<Verification>&) -> Result<StartWrite> {
                         return StartWrite{v, true, std::nullopt, std::nullopt};
                       });
    ASSERT_TRUE(r) << n << ": " << r.error().message;
    ASSERT_TRUE(approve(s(), sidN("VA", 1), v.sid));
    // Approving twice counts once.
    ASSERT_TRUE(approve(s(), sidN("VA", 1), v.sid));
  }
  EXPECT_TRUE(s().fraudBlocks(kAccount, kNow + 100)->empty());
}

// ---- rate limits and buckets --------------------------------------------------------------

RateLimit rateLimit(int n, const std::string& name, int service_n = 1) {
  return RateLimit{sidN("RK", n), sidN("VA", service_n), kAccount, name, std::nullopt, kNow + n,
                   kNow + n};
}

Bucket bucket(int n, int rate_limit_n, int max, int interval) {
  return Bucket{
      sidN("BL", n), sidN("RK", rate_limit_n), sidN("VA", 1), kAccount, max, interval, kNow + n,
      kNow + n};
}

TEST_P(StoreContract, RateLimitsAreLimitedUniqueAndEditable) {
  ASSERT_TRUE(s().createService(service(1)));
  ASSERT_TRUE(s().createRateLimit(rateLimit(1, "end_user_ip"), 2));
  auto dup = s().createRateLimit(rateLimit(2, "end_user_ip"), 2);
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().kind, ErrorKind::kDuplicateRateLimit);
  RateLimit described = rateLimit(2, "phone");
  described.description = "per phone";
  ASSERT_TRUE(s().createRateLimit(described, 2));
  auto many = s().createRateLimit(rateLimit(3, "third"), 2);
  ASSERT_FALSE(many);
  EXPECT_EQ(many.error().kind, ErrorKind::kTooManyRateLimits);
  ASSERT_TRUE(s().createRateLimit(rateLimit(4, "end_user_ip", 2), 2));  // another service

  auto got = *s().getRateLimit(sidN("VA", 1), sidN("RK", 2));
  ASSERT_TRUE(got);
  EXPECT_EQ(got->description, "per phone");
  EXPECT_EQ(got->unique_name, "phone");
  EXPECT_FALSE(*s().getRateLimit(sidN("VA", 2), sidN("RK", 2)));
  auto page = *s().listRateLimits(sidN("VA", 1), {}, 1);
  ASSERT_EQ(page.items.size(), 1u);
  EXPECT_EQ(page.items[0].sid, sidN("RK", 1));
  EXPECT_TRUE(page.has_next);
  page = *s().listRateLimits(sidN("VA", 1), {PageCursor::Direction::kAfter, page.last_seq}, 1);
  ASSERT_EQ(page.items.size(), 1u);
  EXPECT_EQ(page.items[0].sid, sidN("RK", 2));
  EXPECT_FALSE(page.has_next);

  auto kept = s().updateRateLimit(sidN("VA", 1), sidN("RK", 2), std::nullopt, kNow + 50);
  ASSERT_TRUE(kept);
  EXPECT_EQ(kept->description, "per phone");
  EXPECT_EQ(kept->date_updated, kNow + 50);
  auto cleared = s().updateRateLimit(sidN("VA", 1), sidN("RK", 2), "", kNow + 60);
  ASSERT_TRUE(cleared);
  EXPECT_FALSE(cleared->description);
  EXPECT_FALSE((*s().getRateLimit(sidN("VA", 1), sidN("RK", 2)))->description);
  auto set = s().updateRateLimit(sidN("VA", 1), sidN("RK", 1), "ip", kNow + 70);
  EXPECT_EQ(set->description, "ip");
  EXPECT_EQ((*s().getRateLimit(sidN("VA", 1), sidN("RK", 1)))->date_updated, kNow + 70);
  auto missing = s().updateRateLimit(sidN("VA", 2), sidN("RK", 1), "x", kNow);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().kind, ErrorKind::kNotFound);

  ASSERT_TRUE(s().createBucket(bucket(1, 1, 5, 60), 5));
  ASSERT_TRUE(s().deleteRateLimit(sidN("VA", 1), sidN("RK", 1)));
  EXPECT_FALSE(*s().getBucket(sidN("RK", 1), sidN("BL", 1)));
  auto gone = s().deleteRateLimit(sidN("VA", 1), sidN("RK", 1));
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().kind, ErrorKind::kNotFound);
  // Room again for a third.
  ASSERT_TRUE(s().createRateLimit(rateLimit(5, "third"), 2));
}

TEST_P(StoreContract, BucketsAreLimitedUniqueAndEditable) {
  ASSERT_TRUE(s().createService(service(1)));
  ASSERT_TRUE(s().createRateLimit(rateLimit(1, "end_user_ip"), 10));
  ASSERT_TRUE(s().createRateLimit(rateLimit(2, "phone"), 10));
  ASSERT_TRUE(s().createRateLimit(rateLimit(3, "empty"), 10));
  ASSERT_TRUE(s().createBucket(bucket(1, 1, 5, 60), 2));
  auto dup = s().createBucket(bucket(2, 1, 9, 60), 2);
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().kind, ErrorKind::kDuplicateBucket);
  ASSERT_TRUE(s().createBucket(bucket(3, 1, 50, 3600), 2));
  auto many = s().createBucket(bucket(4, 1, 1, 7200), 2);
  ASSERT_FALSE(many);
  EXPECT_EQ(many.error().kind, ErrorKind::kTooManyBuckets);
  ASSERT_TRUE(s().createBucket(bucket(5, 2, 3, 60), 2));  // another limit

  auto got = *s().getBucket(sidN("RK", 1), sidN("BL", 3));
  ASSERT_TRUE(got);
  EXPECT_EQ(got->max, 50);
  EXPECT_EQ(got->interval, 3600);
  EXPECT_FALSE(*s().getBucket(sidN("RK", 2), sidN("BL", 3)));
  auto list = *s().listBuckets(sidN("RK", 1), {}, 10);
  ASSERT_EQ(list.items.size(), 2u);
  EXPECT_EQ(list.items[0].sid, sidN("BL", 1));

  auto taken = s().updateBucket(sidN("RK", 1), sidN("BL", 3), std::nullopt, 60, kNow + 9);
  ASSERT_FALSE(taken);
  EXPECT_EQ(taken.error().kind, ErrorKind::kDuplicateBucket);
  auto same = s().updateBucket(sidN("RK", 1), sidN("BL", 3), 40, 3600, kNow + 9);
  ASSERT_TRUE(same);
  EXPECT_EQ(same->max, 40);
  auto moved = s().updateBucket(sidN("RK", 1), sidN("BL", 3), std::nullopt, 120, kNow + 10);
  ASSERT_TRUE(moved);
  EXPECT_EQ(moved->max, 40);
  EXPECT_EQ(moved->interval, 120);
  EXPECT_EQ(moved->date_updated, kNow + 10);
  EXPECT_EQ((*s().getBucket(sidN("RK", 1), sidN("BL", 3)))->interval, 120);
  auto missing = s().updateBucket(sidN("RK", 2), sidN("BL", 3), 1, std::nullopt, kNow);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().kind, ErrorKind::kNotFound);

  auto all = *s().rateLimitsOfService(sidN("VA", 1));
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(all[0].first, "end_user_ip");
  EXPECT_EQ(all[0].second->sid, sidN("BL", 1));
  EXPECT_EQ(all[1].first, "end_user_ip");
  EXPECT_EQ(all[1].second->interval, 120);
  EXPECT_EQ(all[2].first, "phone");
  EXPECT_EQ(all[2].second->max, 3);
  EXPECT_EQ(all[3].first, "empty");
  EXPECT_FALSE(all[3].second);

  ASSERT_TRUE(s().deleteBucket(sidN("RK", 1), sidN("BL", 1)));
  auto gone = s().deleteBucket(sidN("RK", 1), sidN("BL", 1));
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().kind, ErrorKind::kNotFound);
  ASSERT_TRUE(s().createBucket(bucket(6, 1, 1, 60), 2));
}

TEST_P(StoreContract, ConcurrentCreatesNeverExceedTheirLimits) {
  ASSERT_TRUE(s().createService(service(1)));
  std::atomic<int> ok{0}, too_many{0}, dup{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 10; ++i)
    threads.emplace_back([&, i] {
      auto r = s().createRateLimit(rateLimit(i + 1, "name" + std::to_string(i)), 3);
      if (r)
        ++ok;
      else if (r.error().kind == ErrorKind::kTooManyRateLimits)
        ++too_many;
    });
  for (int i = 0; i < 6; ++i)
    threads.emplace_back([&, i] {
      auto r = s().createRateLimit(rateLimit(100 + i, "shared", 2), 10);
      if (r)
        ++ok;
      else if (r.error().kind == ErrorKind::kDuplicateRateLimit)
        ++dup;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 4);
  EXPECT_EQ(too_many.load(), 7);
  EXPECT_EQ(dup.load(), 5);
  EXPECT_EQ(s().listRateLimits(sidN("VA", 1), {}, 100)->items.size(), 3u);

  ASSERT_TRUE(s().createRateLimit(rateLimit(200, "buckets"), 100));
  std::atomic<int> buckets_ok{0}, buckets_dup{0};
  threads.clear();
  for (int i = 0; i < 8; ++i)
    threads.emplace_back([&, i] {
      // Four intervals, each wanted twice; at most three buckets.
      auto r = s().createBucket(bucket(i + 1, 200, 1, 60 * (1 + i % 4)), 3);
      if (r)
        ++buckets_ok;
      else if (r.error().kind == ErrorKind::kDuplicateBucket)
        ++buckets_dup;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(buckets_ok.load(), 3);
  EXPECT_EQ(s().listBuckets(sidN("RK", 200), {}, 100)->items.size(), 3u);
  std::set<int> intervals;
  auto buckets = *s().listBuckets(sidN("RK", 200), {}, 100);
  for (const auto& b : buckets.items) intervals.insert(b.interval);
  EXPECT_EQ(intervals.size(), 3u);
}

// ---- safe list, geo permissions ------------------------------------------------------------

TEST_P(StoreContract, SafeNumbersAreAddedOnceAndRemoved) {
  SafeNumber first{sidN("GN", 1), kAccount, "+15017122661", kNow};
  auto added = s().addSafeNumber(first);
  ASSERT_TRUE(added);
  EXPECT_EQ(added->sid, sidN("GN", 1));
  SafeNumber again{sidN("GN", 2), kAccount, "+15017122661", kNow + 5};
  auto existing = s().addSafeNumber(again);
  ASSERT_TRUE(existing);
  EXPECT_EQ(existing->sid, sidN("GN", 1));
  EXPECT_EQ(existing->date_created, kNow);
  auto got = *s().getSafeNumber(kAccount, "+15017122661");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->sid, sidN("GN", 1));
  EXPECT_EQ(got->account_sid, kAccount);
  EXPECT_EQ(got->phone_number, "+15017122661");
  EXPECT_FALSE(*s().getSafeNumber(kOtherAccount, "+15017122661"));
  ASSERT_TRUE(s().addSafeNumber(SafeNumber{sidN("GN", 3), kOtherAccount, "+15017122661", kNow}));
  ASSERT_TRUE(s().removeSafeNumber(kAccount, "+15017122661"));
  EXPECT_FALSE(*s().getSafeNumber(kAccount, "+15017122661"));
  EXPECT_TRUE(*s().getSafeNumber(kOtherAccount, "+15017122661"));
  auto missing = s().removeSafeNumber(kAccount, "+15017122661");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().kind, ErrorKind::kNotFound);
}

TEST_P(StoreContract, GeoPermissionsAreSetReplacedAndSorted) {
  EXPECT_TRUE(s().geoPermissions(kAccount)->empty());
  ASSERT_TRUE(s().setGeoPermission(kAccount, GeoPermission{"sms", "US", true, kNow}));
  ASSERT_TRUE(s().setGeoPermission(kAccount, GeoPermission{"sms", "FR", false, kNow}));
  ASSERT_TRUE(s().setGeoPermission(kAccount, GeoPermission{"call", "US", false, kNow}));
  ASSERT_TRUE(s().setGeoPermission(kAccount, GeoPermission{"sms", "fr", true, kNow}));
  ASSERT_TRUE(s().setGeoPermission(kOtherAccount, GeoPermission{"sms", "DE", false, kNow}));
  auto all = *s().geoPermissions(kAccount);  // read: later changes must show
  ASSERT_EQ(all.size(), 4u);
  ASSERT_TRUE(s().setGeoPermission(kAccount, GeoPermission{"sms", "FR", true, kNow + 9}));
  all = *s().geoPermissions(kAccount);
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(all[0].channel, "call");
  EXPECT_EQ(all[1].country, "FR");
  EXPECT_TRUE(all[1].allowed);
  EXPECT_EQ(all[1].date_updated, kNow + 9);
  EXPECT_EQ(all[2].country, "US");  // byte order: upper case first
  EXPECT_EQ(all[3].country, "fr");
  EXPECT_EQ(s().geoPermissions(kOtherAccount)->size(), 1u);
}

// ---- outbox -------------------------------------------------------------------------------

TEST_P(StoreContract, TheOutboxListsNewestFirstAndFiltersByTo) {
  ASSERT_TRUE(s().createService(service(1)));
  for (int i = 1; i <= 5; ++i) {
    std::string to = i % 2 ? "+15017122661" : "+15017122662";
    ASSERT_TRUE(startWith(s(), sidN("VA", 1), to, kNow + i, {},
                          newOrResend(sidN("VE", i), sidN("VA", 1), to, kNow + i)));
  }
  auto all = *s().listMessages(kAccount, "", {}, 10);
  ASSERT_EQ(all.items.size(), 5u);
  EXPECT_EQ(all.items[0].date_created, kNow + 5);
  EXPECT_EQ(all.items[4].date_created, kNow + 1);
  auto odd = *s().listMessages(kAccount, "+15017122661", {}, 2);
  ASSERT_EQ(odd.items.size(), 2u);
  EXPECT_EQ(odd.items[0].date_created, kNow + 5);
  EXPECT_EQ(odd.items[1].date_created, kNow + 3);
  EXPECT_TRUE(odd.has_next);
  EXPECT_GT(odd.first_seq, odd.last_seq);
  auto rest =
      *s().listMessages(kAccount, "+15017122661", {PageCursor::Direction::kAfter, odd.last_seq}, 2);
  ASSERT_EQ(rest.items.size(), 1u);
  EXPECT_EQ(rest.items[0].date_created, kNow + 1);
  EXPECT_FALSE(rest.has_next);
  EXPECT_TRUE(rest.has_previous);
  auto back = *s().listMessages(kAccount, "+15017122661",
                                {PageCursor::Direction::kBefore, rest.first_seq}, 2);
  ASSERT_EQ(back.items.size(), 2u);
  EXPECT_EQ(back.items[0].date_created, kNow + 5);
  EXPECT_TRUE(s().listMessages(kOtherAccount, "", {}, 10)->items.empty());
}

// ---- delivery attempts --------------------------------------------------------------------

TEST_P(StoreContract, ClaimsTakeDueAttemptsOnceUntilTheirLeaseEnds) {
  ASSERT_TRUE(s().createService(service(1)));
  const std::int64_t t0 = kNow * 1000;
  seed(1, "+15017122661", t0 + 2000);
  seed(2, "+15017122662", t0 + 1000);
  seed(3, "+15017122663", t0 + 5000);
  EXPECT_FALSE(*s().anyAttemptDue(t0 + 500));
  EXPECT_TRUE(*s().anyAttemptDue(t0 + 1000));
  EXPECT_TRUE(s().claimAttempts(t0 + 500, 1000, 10, "A")->empty());

  auto a = *s().claimAttempts(t0 + 2500, 1000, 10, "A");
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[0].sid, sidN("VL", 2));  // the longest due first
  EXPECT_EQ(a[1].sid, sidN("VL", 1));
  for (const auto& x : a) {
    EXPECT_EQ(x.message_status, message_status::kSending);
    EXPECT_EQ(x.lease_token, "A");
    EXPECT_EQ(x.lease_until_ms, t0 + 3500);
    EXPECT_FALSE(x.outcome_unknown);
    EXPECT_EQ(x.payload_sealed, allBytes());
  }
  auto stored = **s().getAttempt(kAccount, sidN("VL", 2));
  EXPECT_EQ(stored.message_status, message_status::kSending);
  EXPECT_EQ(stored.lease_until_ms, t0 + 3500);
  EXPECT_EQ(stored.lease_token, "A");
  // Held by the lease.
  EXPECT_FALSE(*s().anyAttemptDue(t0 + 3000));
  EXPECT_TRUE(s().claimAttempts(t0 + 3000, 1000, 10, "B")->empty());
  // The limit holds; the lease ran out: taken over, with the outcome of the first try unknown.
  auto b = *s().claimAttempts(t0 + 3600, 10000, 1, "B");
  ASSERT_EQ(b.size(), 1u);
  const std::string other = b[0].sid == sidN("VL", 1) ? sidN("VL", 2) : sidN("VL", 1);
  EXPECT_TRUE(b[0].sid == sidN("VL", 1) || b[0].sid == sidN("VL", 2));
  EXPECT_TRUE(b[0].outcome_unknown);
  EXPECT_EQ(b[0].lease_token, "B");
  EXPECT_TRUE((**s().getAttempt(kAccount, b[0].sid)).outcome_unknown);
  EXPECT_FALSE((**s().getAttempt(kAccount, other)).outcome_unknown);
  auto c = *s().claimAttempts(t0 + 6000, 1000, 10, "C");
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].sid, other);
  EXPECT_TRUE(c[0].outcome_unknown);
  EXPECT_EQ(c[1].sid, sidN("VL", 3));
  EXPECT_FALSE(c[1].outcome_unknown);
}

TEST_P(StoreContract, FinishTryIgnoresALostLeaseAndKeepsReceipts) {
  ASSERT_TRUE(s().createService(service(1)));
  const std::int64_t t0 = kNow * 1000;
  seed(1, "+15017122661", t0);
  auto first = *s().claimAttempts(t0, 1000, 1, "A");
  ASSERT_EQ(first.size(), 1u);
  auto taken = *s().claimAttempts(t0 + 2000, 1000, 1, "B");
  ASSERT_EQ(taken.size(), 1u);
  ASSERT_EQ(taken[0].sid, first[0].sid);
  // A's try comes back late: ignored.
  DeliveryAttempt late = first[0];
  late.message_status = message_status::kFailed;
  late.error_code = "30008";
  ASSERT_TRUE(s().finishTry(late));
  EXPECT_EQ((**s().getAttempt(kAccount, first[0].sid)).message_status, message_status::kSending);
  // B's counts.
  DeliveryAttempt done = taken[0];
  done.message_status = message_status::kSent;
  done.provider = "twilio";
  done.provider_message_id = "SM1";
  done.tries = 2;
  done.provider_tries = 1;
  done.next_try_ms = 0;
  done.date_updated = kNow + 5;
  ASSERT_TRUE(s().finishTry(done));
  auto got = **s().getAttempt(kAccount, first[0].sid);
  EXPECT_EQ(got.message_status, message_status::kSent);
  EXPECT_EQ(got.provider, "twilio");
  EXPECT_EQ(got.provider_message_id, "SM1");
  EXPECT_EQ(got.tries, 2);
  EXPECT_EQ(got.provider_tries, 1);
  EXPECT_TRUE(got.outcome_unknown);
  EXPECT_EQ(got.lease_token, "");
  EXPECT_EQ(got.lease_until_ms, 0);
  EXPECT_EQ(got.date_updated, kNow + 5);
  EXPECT_FALSE(*s().anyAttemptDue(t0 + 100000));
  // A finishTry for an attempt that does not exist is a no-op.
  DeliveryAttempt ghost = done;
  ghost.sid = sidN("VL", 99);
  EXPECT_TRUE(s().finishTry(ghost));

  // Receipts move forward only.
  ASSERT_TRUE(s().applyReceipt(got.sid, message_status::kDelivered, "", "", kNow + 6));
  ASSERT_TRUE(s().applyReceipt(got.sid, message_status::kSent, "1", "back", kNow + 7));
  got = **s().getAttempt(kAccount, got.sid);
  EXPECT_EQ(got.message_status, message_status::kDelivered);
  EXPECT_EQ(got.error_code, "");
  EXPECT_EQ(got.date_updated, kNow + 6);
  auto missing = s().applyReceipt(sidN("VL", 99), message_status::kDelivered, "", "", kNow);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().kind, ErrorKind::kNotFound);

  // A receipt that arrives while the try is in flight is kept over the try's outcome.
  seed(2, "+15017122662", t0);
  auto second = *s().claimAttempts(t0 + 2000, 1000, 1, "C");
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].sid, sidN("VL", 2));
  ASSERT_TRUE(s().applyReceipt(second[0].sid, message_status::kUndelivered, "30003", "unreachable",
                               kNow + 8));
  DeliveryAttempt sent = second[0];
  sent.message_status = message_status::kSent;
  sent.tries = 1;
  ASSERT_TRUE(s().finishTry(sent));
  got = **s().getAttempt(kAccount, second[0].sid);
  EXPECT_EQ(got.message_status, message_status::kUndelivered);
  EXPECT_EQ(got.tries, 1);
  // A try to be retried is due again at its next try.
  seed(3, "+15017122663", t0);
  auto third = *s().claimAttempts(t0 + 3000, 1000, 1, "D");
  ASSERT_EQ(third.size(), 1u);
  EXPECT_EQ(third[0].sid, sidN("VL", 3));
  DeliveryAttempt retry = third[0];
  retry.message_status = message_status::kQueued;
  retry.next_try_ms = t0 + 9000;
  ASSERT_TRUE(s().finishTry(retry));
  EXPECT_FALSE(*s().anyAttemptDue(t0 + 8999));
  EXPECT_TRUE(*s().anyAttemptDue(t0 + 9000));
  auto fourth = *s().claimAttempts(t0 + 9000, 1000, 5, "E");
  ASSERT_EQ(fourth.size(), 1u);
  EXPECT_FALSE(fourth[0].outcome_unknown);
}

TEST_P(StoreContract, AttemptsAreListedFilteredAndSummarized) {
  ASSERT_TRUE(s().createService(service(1)));
  const std::int64_t t0 = kNow * 1000;
  seed(1, "+15017122661", t0 + 1000, "US");
  seed(2, "+33612345678", t0 + 2000, "FR");
  seed(3, "+15017122663", t0 + 3000, "US", "call");
  seed(4, "+15027122664", t0 + 4000, "US");
  ASSERT_TRUE(approve(s(), sidN("VA", 1), sidN("VE", 2)));
  ASSERT_TRUE(approve(s(), sidN("VA", 1), sidN("VE", 4)));

  auto sids = [&](const AttemptFilter& f) {
    std::vector<std::string> out;
    auto page = s().listAttempts(kAccount, f, {}, 10);
    EXPECT_TRUE(page);
    if (page)
      for (const auto& a : page->items) out.push_back(a.sid);
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(sids({}), (V{sidN("VL", 4), sidN("VL", 3), sidN("VL", 2), sidN("VL", 1)}));
  AttemptFilter f;
  f.country = "US";
  EXPECT_EQ(sids(f), (V{sidN("VL", 4), sidN("VL", 3), sidN("VL", 1)}));
  f = {};
  f.channel = "call";
  EXPECT_EQ(sids(f), (V{sidN("VL", 3)}));
  f = {};
  f.destination_prefix = "+1501";
  EXPECT_EQ(sids(f), (V{sidN("VL", 3), sidN("VL", 1)}));
  f = {};
  f.converted = true;
  EXPECT_EQ(sids(f), (V{sidN("VL", 4), sidN("VL", 2)}));
  f.converted = false;
  EXPECT_EQ(sids(f), (V{sidN("VL", 3), sidN("VL", 1)}));
  f = {};
  f.created_after = kNow + 2;
  f.created_before = kNow + 3;
  EXPECT_EQ(sids(f), (V{sidN("VL", 3), sidN("VL", 2)}));
  f = {};
  f.to = "+33612345678";
  f.verification_sid = sidN("VE", 2);
  f.service_sid = sidN("VA", 1);
  EXPECT_EQ(sids(f), (V{sidN("VL", 2)}));
  f.service_sid = sidN("VA", 2);
  EXPECT_TRUE(sids(f).empty());
  EXPECT_TRUE(s().listAttempts(kOtherAccount, {}, {}, 10)->items.empty());

  auto got = **s().getAttempt(kAccount, sidN("VL", 4));
  EXPECT_TRUE(got.converted);
  auto page = *s().listAttempts(kAccount, {}, {}, 3);
  EXPECT_TRUE(page.has_next);
  auto last = *s().listAttempts(kAccount, {}, {PageCursor::Direction::kAfter, page.last_seq}, 3);
  ASSERT_EQ(last.items.size(), 1u);
  EXPECT_EQ(last.items[0].sid, sidN("VL", 1));
  EXPECT_TRUE(last.items[0].payload_sealed == allBytes());

  auto sum = *s().summarizeAttempts(kAccount, {});
  EXPECT_EQ(sum.total, 4);
  EXPECT_EQ(sum.converted, 2);
  f = {};
  f.country = "US";
  sum = *s().summarizeAttempts(kAccount, f);
  EXPECT_EQ(sum.total, 3);
  EXPECT_EQ(sum.converted, 1);
  f.converted = false;
  sum = *s().summarizeAttempts(kAccount, f);
  EXPECT_EQ(sum.total, 2);
  EXPECT_EQ(sum.converted, 0);
  sum = *s().summarizeAttempts(kOtherAccount, {});
  EXPECT_EQ(sum.total, 0);
}

TEST_P(StoreContract, ConcurrentClaimsNeverShareAnAttempt) {
  ASSERT_TRUE(s().createService(service(1)));
  const std::int64_t t0 = kNow * 1000;
  constexpr int kAttempts = 40;
  for (int i = 1; i <= kAttempts; ++i) seed(i, "+1501712" + std::to_string(4000 + i), t0 + i);
  std::mutex mu;
  std::vector<std::string> claimed;
  std::vector<std::thread> threads;
  for (int w = 0; w < 4; ++w)
    threads.emplace_back([&, w] {
      for (;;) {
        auto got = s().claimAttempts(t0 + 1000, 60000, 3, "worker" + std::to_string(w));
        EXPECT_TRUE(got) << got.error().message;
        if (!got || got->empty()) break;
        std::lock_guard lock(mu);
        for (const auto& a : *got) {
          EXPECT_EQ(a.lease_token, "worker" + std::to_string(w));
          claimed.push_back(a.sid);
        }
      }
    });
  for (auto& t : threads) t.join();
  std::set<std::string> distinct(claimed.begin(), claimed.end());
  EXPECT_EQ(claimed.size(), static_cast<std::size_t>(kAttempts));
  EXPECT_EQ(distinct.size(), static_cast<std::size_t>(kAttempts));
}

// ---- messaging configurations -------------------------------------------------------------

TEST_P(StoreContract, MessagingConfigurationsOnePerCountry) {
  ASSERT_TRUE(s().createService(service(1)));
  auto config = [](const std::string& country, int mg) {
    return MessagingConfiguration{kAccount,       sidN("VA", 1), country,
                                  sidN("MG", mg), kNow + mg,     kNow + mg};
  };
  ASSERT_TRUE(s().createMessagingConfig(config("US", 1)));
  auto dup = s().createMessagingConfig(config("US", 2));
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().kind, ErrorKind::kDuplicateMessagingConfiguration);
  ASSERT_TRUE(s().createMessagingConfig(config("all", 3)));
  ASSERT_TRUE(s().createMessagingConfig(config("FR", 4)));

  auto got = *s().getMessagingConfig(sidN("VA", 1), "US");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->messaging_service_sid, sidN("MG", 1));
  EXPECT_EQ(got->account_sid, kAccount);
  EXPECT_EQ(got->date_created, kNow + 1);
  EXPECT_FALSE(*s().getMessagingConfig(sidN("VA", 2), "US"));
  auto page = *s().listMessagingConfigs(sidN("VA", 1), {}, 2);
  ASSERT_EQ(page.items.size(), 2u);
  EXPECT_EQ(page.items[0].country, "US");
  EXPECT_EQ(page.items[1].country, "all");
  EXPECT_TRUE(page.has_next);
  page =
      *s().listMessagingConfigs(sidN("VA", 1), {PageCursor::Direction::kAfter, page.last_seq}, 2);
  ASSERT_EQ(page.items.size(), 1u);
  EXPECT_EQ(page.items[0].country, "FR");

  auto updated = s().updateMessagingConfig(sidN("VA", 1), "US", sidN("MG", 9), kNow + 50);
  ASSERT_TRUE(updated);
  EXPECT_EQ(updated->messaging_service_sid, sidN("MG", 9));
  EXPECT_EQ(updated->date_updated, kNow + 50);
  EXPECT_EQ(updated->date_created, kNow + 1);
  EXPECT_EQ((*s().getMessagingConfig(sidN("VA", 1), "US"))->messaging_service_sid, sidN("MG", 9));
  auto missing = s().updateMessagingConfig(sidN("VA", 1), "DE", sidN("MG", 9), kNow);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().kind, ErrorKind::kNotFound);
  ASSERT_TRUE(s().deleteMessagingConfig(sidN("VA", 1), "US"));
  EXPECT_FALSE(*s().getMessagingConfig(sidN("VA", 1), "US"));
  auto gone = s().deleteMessagingConfig(sidN("VA", 1), "US");
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().kind, ErrorKind::kNotFound);
  ASSERT_TRUE(s().createMessagingConfig(config("US", 5)));

  std::atomic<int> ok{0}, dups{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i)
    threads.emplace_back([&, i] {
      auto r = s().createMessagingConfig(config("DE", 10 + i));
      if (r)
        ++ok;
      else if (r.error().kind == ErrorKind::kDuplicateMessagingConfiguration)
        ++dups;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 1);
  EXPECT_EQ(dups.load(), 7);
}

// ---- factors (core/ports/factor_store.h) ------------------------------------------------------

namespace factors {

const std::string kService = "VA" + std::string(32, 'a');
const std::string kOtherService = "VA" + std::string(32, 'b');
constexpr UnixTime kT0 = kNow;

// The same store as a FactorStore (every backend implements both interfaces), with the cases of
// test/unit/factor_store_test.cc.
class FactorContract : public StoreContract {
 protected:
  FactorStore& fs() { return dynamic_cast<FactorStore&>(*store_); }

  static Entity entity(const std::string& identity, int n, const std::string& service = kService) {
    Entity e;
    e.sid = sidN("YE", n);
    e.account_sid = kAccount;
    e.service_sid = service;
    e.identity = identity;
    e.date_created = e.date_updated = kT0 + n;
    return e;
  }
  static Factor factor(const std::string& identity, int n, const std::string& type = "totp") {
    Factor f;
    f.sid = sidN("YF", n);
    f.account_sid = kAccount;
    f.service_sid = kService;
    f.entity_sid = sidN("YE", 1);
    f.identity = identity;
    f.friendly_name = "factor " + std::to_string(n);
    f.factor_type = type;
    if (type == "totp") {
      f.totp = TotpConfig{"sha256", 2, 8, 45};
      f.secret_sealed = std::string("sealed\0seed", 11) + std::to_string(n);
    } else {
      f.push = PushConfig{"1.0.0", "com.example.app", "fcm", "tok-" + std::to_string(n)};
      f.public_key = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE" + std::to_string(n);
      f.binding_alg = "ES256";
    }
    f.metadata = R"({"os":"Android"})";
    f.date_created = f.date_updated = kT0 + n;
    return f;
  }
  static Challenge challenge(const std::string& identity, int n, const std::string& factor_sid) {
    Challenge c;
    c.sid = sidN("YC", n);
    c.account_sid = kAccount;
    c.service_sid = kService;
    c.entity_sid = sidN("YE", 1);
    c.identity = identity;
    c.factor_sid = factor_sid;
    c.factor_type = "push";
    c.details_message = "Login request " + std::to_string(n);
    c.details_fields = {{"Location", "Berlin"}, {"IP", "10.0.0.1"}};
    c.hidden_details = R"({"ip":"10.0.0.1"})";
    c.expiration_date = kT0 + 300 + n;
    c.date_created = c.date_updated = kT0 + n;
    return c;
  }
  static Webhook webhook(int n, std::vector<std::string> types, const std::string& status,
                         const std::string& service = kService) {
    Webhook w;
    w.sid = sidN("YW", n);
    w.account_sid = kAccount;
    w.service_sid = service;
    w.friendly_name = "hook " + std::to_string(n);
    w.event_types = std::move(types);
    w.status = status;
    w.webhook_url = "https://hooks.example/" + std::to_string(n);
    w.date_created = w.date_updated = kT0 + n;
    return w;
  }
  std::vector<WebhookDelivery> deliveries(const std::string& service = kService) {
    auto page = fs().listWebhookDeliveries(service, {}, 100);
    EXPECT_TRUE(page);
    return page ? page->items : std::vector<WebhookDelivery>{};
  }
};

INSTANTIATE_TEST_SUITE_P(Sqlite, FactorContract,
                         ::testing::Values(BackendParam{"sqlite", makeSqlite}), paramName);
INSTANTIATE_TEST_SUITE_P(Postgres, FactorContract,
                         ::testing::Values(BackendParam{"postgres", makePostgres}), paramName);

// ---- factors: entities --------------------------------------------------------------------------

TEST_P(FactorContract, EntitiesCreateGetListAndRefuseDuplicates) {
  ASSERT_TRUE(fs().createEntity(entity("alice-0001", 1)));
  ASSERT_TRUE(fs().createEntity(entity("bob-000002", 2)));
  ASSERT_TRUE(fs().createEntity(entity("alice-0001", 3, kOtherService)));  // other service

  auto dup = fs().createEntity(entity("alice-0001", 4));
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().kind, ErrorKind::kDuplicateEntity);

  auto got = fs().getEntity(kService, "alice-0001");
  ASSERT_TRUE(got && *got);
  EXPECT_EQ((*got)->sid, sidN("YE", 1));
  EXPECT_EQ((*got)->account_sid, kAccount);
  EXPECT_EQ((*got)->date_created, kT0 + 1);
  EXPECT_FALSE(*fs().getEntity(kService, "nobody-0001"));

  auto page = fs().listEntities(kService, {}, 1);
  ASSERT_TRUE(page);
  ASSERT_EQ(page->items.size(), 1u);
  EXPECT_EQ(page->items[0].identity, "alice-0001");
  EXPECT_TRUE(page->has_next);
  auto next = fs().listEntities(kService, {PageCursor::Direction::kAfter, page->last_seq}, 1);
  ASSERT_TRUE(next);
  ASSERT_EQ(next->items.size(), 1u);
  EXPECT_EQ(next->items[0].identity, "bob-000002");
  EXPECT_FALSE(next->has_next);
  EXPECT_TRUE(next->has_previous);
}

TEST_P(FactorContract, GetOrCreateEntityIsIdempotent) {
  auto first = fs().getOrCreateEntity(entity("carol-0001", 1));
  ASSERT_TRUE(first);
  EXPECT_EQ(first->sid, sidN("YE", 1));
  auto second = fs().getOrCreateEntity(entity("carol-0001", 2));  // another sid: ignored
  ASSERT_TRUE(second);
  EXPECT_EQ(second->sid, sidN("YE", 1));
  EXPECT_EQ(second->date_created, kT0 + 1);
  auto page = fs().listEntities(kService, {}, 10);
  ASSERT_TRUE(page);
  EXPECT_EQ(page->items.size(), 1u);
}

TEST_P(FactorContract, DeleteEntityCascadesToFactorsAndChallenges) {
  ASSERT_TRUE(fs().createEntity(entity("alice-0001", 1)));
  ASSERT_TRUE(fs().createEntity(entity("bob-000002", 2)));
  ASSERT_TRUE(fs().createFactor(factor("alice-0001", 1, "push"), {}));
  ASSERT_TRUE(fs().createFactor(factor("bob-000002", 2), {}));
  ASSERT_TRUE(fs().createChallenge(challenge("alice-0001", 1, sidN("YF", 1)), {}, std::nullopt));
  ASSERT_TRUE(fs().createWebhook(webhook(1, {"factor.deleted"}, "enabled")));

  ASSERT_TRUE(fs().deleteEntity(kService, "alice-0001", {{"factor.deleted", R"({"sid":"YF1"})"}}));
  EXPECT_FALSE(*fs().getEntity(kService, "alice-0001"));
  EXPECT_FALSE(*fs().getFactor(kService, "alice-0001", sidN("YF", 1)));
  EXPECT_FALSE(*fs().getChallenge(kService, "alice-0001", sidN("YC", 1)));
  // The other entity is untouched.
  EXPECT_TRUE(*fs().getEntity(kService, "bob-000002"));
  EXPECT_TRUE(*fs().getFactor(kService, "bob-000002", sidN("YF", 2)));
  // The event was fanned out with the delete.
  auto ds = deliveries();
  ASSERT_EQ(ds.size(), 1u);
  EXPECT_EQ(ds[0].body, R"({"sid":"YF1"})");

  auto again = fs().deleteEntity(kService, "alice-0001", {});
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().kind, ErrorKind::kNotFound);
}

// ---- factors: factors ---------------------------------------------------------------------------

TEST_P(FactorContract, FactorsRoundTripEveryField) {
  Factor totp = factor("alice-0001", 1);
  Factor push = factor("alice-0001", 2, "push");
  push.metadata.reset();
  ASSERT_TRUE(fs().createFactor(totp, {}));
  ASSERT_TRUE(fs().createFactor(push, {}));
  reopen();

  auto got = fs().getFactor(kService, "alice-0001", totp.sid);
  ASSERT_TRUE(got && *got);
  const Factor& t = **got;
  EXPECT_EQ(t.entity_sid, totp.entity_sid);
  EXPECT_EQ(t.friendly_name, totp.friendly_name);
  EXPECT_EQ(t.status, "unverified");
  EXPECT_EQ(t.factor_type, "totp");
  EXPECT_EQ(t.totp.alg, "sha256");
  EXPECT_EQ(t.totp.skew, 2);
  EXPECT_EQ(t.totp.code_length, 8);
  EXPECT_EQ(t.totp.time_step, 45);
  EXPECT_EQ(t.secret_sealed, totp.secret_sealed);  // binary, with a NUL
  EXPECT_EQ(t.metadata, totp.metadata);
  EXPECT_EQ(t.last_step, -1);
  EXPECT_EQ(t.date_created, kT0 + 1);

  auto p = fs().getFactor(kService, "alice-0001", push.sid);
  ASSERT_TRUE(p && *p);
  EXPECT_EQ((*p)->push.sdk_version, "1.0.0");
  EXPECT_EQ((*p)->push.app_id, "com.example.app");
  EXPECT_EQ((*p)->push.notification_platform, "fcm");
  EXPECT_EQ((*p)->push.notification_token, "tok-2");
  EXPECT_EQ((*p)->public_key, push.public_key);
  EXPECT_EQ((*p)->binding_alg, "ES256");
  EXPECT_FALSE((*p)->metadata);

  // Addressed by service, identity and sid.
  EXPECT_FALSE(*fs().getFactor(kService, "bob-000002", totp.sid));
  EXPECT_FALSE(*fs().getFactor(kOtherService, "alice-0001", totp.sid));

  auto page = fs().listFactors(kService, "alice-0001", {}, 10);
  ASSERT_TRUE(page);
  ASSERT_EQ(page->items.size(), 2u);
  EXPECT_EQ(page->items[0].sid, totp.sid);
  EXPECT_EQ(page->items[1].sid, push.sid);
  EXPECT_TRUE(fs().listFactors(kService, "bob-000002", {}, 10)->items.empty());
}

TEST_P(FactorContract, MutateFactorStoresTheChangeAndKeepsIds) {
  Factor f = factor("alice-0001", 1);
  ASSERT_TRUE(fs().createFactor(f, {}));
  auto changed = fs().mutateFactor(kService, "alice-0001", f.sid,
                                   [](const Factor& old) -> Result<FactorChange> {
                                     Factor n = old;
                                     n.sid = "YFforged";
                                     n.identity = "mallory-01";
                                     n.status = "verified";
                                     n.friendly_name = "renamed";
                                     n.last_step = 56666666;
                                     n.failed_attempts = 3;
                                     n.metadata.reset();
                                     n.date_updated = kT0 + 100;
                                     return FactorChange{n, {}};
                                   });
  ASSERT_TRUE(changed) << changed.error().message;
  EXPECT_EQ(changed->sid, f.sid);
  EXPECT_EQ(changed->status, "verified");
  auto got = fs().getFactor(kService, "alice-0001", f.sid);
  ASSERT_TRUE(got && *got);
  EXPECT_EQ((*got)->identity, "alice-0001");
  EXPECT_EQ((*got)->status, "verified");
  EXPECT_EQ((*got)->friendly_name, "renamed");
  EXPECT_EQ((*got)->last_step, 56666666);
  EXPECT_EQ((*got)->failed_attempts, 3);
  EXPECT_FALSE((*got)->metadata);
  EXPECT_EQ((*got)->date_updated, kT0 + 100);
  EXPECT_EQ((*got)->secret_sealed, f.secret_sealed);

  // A failing change writes nothing.
  auto refused = fs().mutateFactor(
      kService, "alice-0001", f.sid,
      [](const Factor&) -> Result<FactorChange> { return fail(Error::invalid("Code")); });
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().kind, ErrorKind::kInvalidArgument);

  auto missing = fs().mutateFactor(kService, "alice-0001", sidN("YF", 9),
                                   [](const Factor& old) -> Result<FactorChange> {
                                     return FactorChange{old, {}};
                                   });
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().kind, ErrorKind::kNotFound);
}

TEST_P(FactorContract, DeleteFactorRemovesItsChallenges) {
  ASSERT_TRUE(fs().createFactor(factor("alice-0001", 1, "push"), {}));
  ASSERT_TRUE(fs().createFactor(factor("alice-0001", 2, "push"), {}));
  ASSERT_TRUE(fs().createChallenge(challenge("alice-0001", 1, sidN("YF", 1)), {}, std::nullopt));
  ASSERT_TRUE(fs().createChallenge(challenge("alice-0001", 2, sidN("YF", 2)), {}, std::nullopt));
  ASSERT_TRUE(fs().deleteFactor(kService, "alice-0001", sidN("YF", 1), {}));
  EXPECT_FALSE(*fs().getFactor(kService, "alice-0001", sidN("YF", 1)));
  EXPECT_FALSE(*fs().getChallenge(kService, "alice-0001", sidN("YC", 1)));
  EXPECT_TRUE(*fs().getChallenge(kService, "alice-0001", sidN("YC", 2)));
  auto again = fs().deleteFactor(kService, "alice-0001", sidN("YF", 1), {});
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().kind, ErrorKind::kNotFound);
  // The wrong identity does not delete another's factor.
  EXPECT_FALSE(fs().deleteFactor(kService, "bob-000002", sidN("YF", 2), {}));
  EXPECT_TRUE(*fs().getFactor(kService, "alice-0001", sidN("YF", 2)));
}

// ---- factors: events ----------------------------------------------------------------------------

TEST_P(FactorContract, EventsFanOutOnlyToEnabledSubscribedWebhooks) {
  // No webhook: nothing is queued.
  ASSERT_TRUE(fs().createFactor(factor("alice-0001", 1), {{"factor.created", R"({"n":1})"}}));
  EXPECT_TRUE(deliveries().empty());

  ASSERT_TRUE(fs().createWebhook(webhook(1, {"factor.created", "factor.verified"}, "enabled")));
  ASSERT_TRUE(fs().createWebhook(webhook(2, {"*"}, "enabled")));
  ASSERT_TRUE(fs().createWebhook(webhook(3, {"factor.created"}, "disabled")));
  ASSERT_TRUE(fs().createWebhook(webhook(4, {"challenge.approved"}, "enabled")));
  ASSERT_TRUE(fs().createWebhook(webhook(5, {"*"}, "enabled", kOtherService)));

  ASSERT_TRUE(fs().createFactor(factor("alice-0001", 2), {{"factor.created", R"({"n":2})"}}));
  auto ds = deliveries();
  ASSERT_EQ(ds.size(), 2u);
  std::set<std::string> hooks;
  for (const auto& d : ds) {
    hooks.insert(d.webhook_sid);
    EXPECT_EQ(d.kind, "webhook");
    EXPECT_EQ(d.status, "queued");
    EXPECT_EQ(d.body, R"({"n":2})");
    EXPECT_EQ(d.account_sid, kAccount);
    EXPECT_EQ(d.service_sid, kService);
    EXPECT_EQ(d.url, "https://hooks.example/" + d.webhook_sid.substr(d.webhook_sid.size() - 1));
    EXPECT_EQ(d.sid.size(), 34u);
    EXPECT_EQ(d.sid.substr(0, 2), "WD");
    EXPECT_EQ(d.date_created, kT0 + 2);
  }
  EXPECT_EQ(hooks, (std::set<std::string>{sidN("YW", 1), sidN("YW", 2)}));
  EXPECT_NE(ds[0].sid, ds[1].sid);
  EXPECT_TRUE(deliveries(kOtherService).empty());

  // A mutation's events: factor.verified reaches 1 and 2, challenge.approved 2 and 4.
  ASSERT_TRUE(fs().mutateFactor(
      kService, "alice-0001", sidN("YF", 2), [](const Factor& old) -> Result<FactorChange> {
        Factor n = old;
        n.status = "verified";
        return FactorChange{
            n, {{"factor.verified", R"({"v":1})"}, {"challenge.approved", R"({"a":1})"}}};
      }));
  ds = deliveries();
  ASSERT_EQ(ds.size(), 6u);
  int verified = 0, approved = 0;
  for (const auto& d : ds) {
    if (d.body == R"({"v":1})") ++verified;
    if (d.body == R"({"a":1})") {
      ++approved;
      EXPECT_TRUE(d.webhook_sid == sidN("YW", 2) || d.webhook_sid == sidN("YW", 4));
    }
  }
  EXPECT_EQ(verified, 2);
  EXPECT_EQ(approved, 2);

  // A change that fails stores no deliveries either.
  ASSERT_FALSE(fs().createFactor(factor("alice-0001", 2), {{"factor.created", "{}"}}));  // dup sid
  EXPECT_EQ(deliveries().size(), 6u);
}

// ---- factors: challenges ------------------------------------------------------------------------

TEST_P(FactorContract, CreateChallengeQueuesThePushInTheSameWrite) {
  ASSERT_TRUE(fs().createFactor(factor("alice-0001", 1, "push"), {}));
  WebhookDelivery push;
  push.kind = "webhook";  // stored as a push whatever it says
  push.account_sid = kAccount;
  push.service_sid = kService;
  push.body = R"({"notification":"Login request"})";
  push.date_created = push.date_updated = kT0 + 5;
  Challenge c = challenge("alice-0001", 1, sidN("YF", 1));
  ASSERT_TRUE(fs().createChallenge(c, {}, push));

  auto got = fs().getChallenge(kService, "alice-0001", c.sid);
  ASSERT_TRUE(got && *got);
  EXPECT_EQ((*got)->details_message, c.details_message);
  ASSERT_EQ((*got)->details_fields.size(), 2u);
  EXPECT_EQ((*got)->details_fields[1].label, "IP");
  EXPECT_EQ((*got)->details_fields[1].value, "10.0.0.1");
  EXPECT_EQ((*got)->hidden_details, c.hidden_details);
  EXPECT_FALSE((*got)->metadata);
  EXPECT_EQ((*got)->status, "pending");
  EXPECT_EQ((*got)->responded_reason, "none");
  EXPECT_EQ((*got)->expiration_date, c.expiration_date);
  EXPECT_EQ((*got)->date_responded, 0);

  auto ds = deliveries();
  ASSERT_EQ(ds.size(), 1u);
  EXPECT_EQ(ds[0].kind, "push");
  EXPECT_EQ(ds[0].body, push.body);
  EXPECT_EQ(ds[0].status, "queued");
  EXPECT_EQ(ds[0].sid.substr(0, 2), "WD");
  EXPECT_EQ(ds[0].sid.size(), 34u);

  // A failed create (duplicate sid) queues no push.
  ASSERT_FALSE(fs().createChallenge(c, {}, push));
  EXPECT_EQ(deliveries().size(), 1u);
}

TEST_P(FactorContract, ListChallengesFiltersAndOrders) {
  ASSERT_TRUE(fs().createFactor(factor("alice-0001", 1, "push"), {}));
  ASSERT_TRUE(fs().createFactor(factor("alice-0001", 2, "push"), {}));
  for (int n = 1; n <= 6; ++n) {
    Challenge c = challenge("alice-0001", n, sidN("YF", n % 2 ? 1 : 2));
    if (n == 3 || n == 4) c.status = "approved";
    ASSERT_TRUE(fs().createChallenge(c, {}, std::nullopt));
  }
  ASSERT_TRUE(fs().createChallenge(challenge("bob-000002", 7, sidN("YF", 1)), {}, std::nullopt));

  auto sids = [](const Page<Challenge>& p) {
    std::vector<int> out;
    for (const auto& c : p.items) out.push_back(std::stoi(c.sid.substr(2)));
    return out;
  };
  auto all = fs().listChallenges(kService, "alice-0001", {}, {}, 10);
  ASSERT_TRUE(all);
  EXPECT_EQ(sids(*all), (std::vector<int>{1, 2, 3, 4, 5, 6}));

  auto by_factor = fs().listChallenges(kService, "alice-0001", {sidN("YF", 1), "", false}, {}, 10);
  ASSERT_TRUE(by_factor);
  EXPECT_EQ(sids(*by_factor), (std::vector<int>{1, 3, 5}));

  auto by_status = fs().listChallenges(kService, "alice-0001", {"", "approved", false}, {}, 10);
  ASSERT_TRUE(by_status);
  EXPECT_EQ(sids(*by_status), (std::vector<int>{3, 4}));

  auto both = fs().listChallenges(kService, "alice-0001", {sidN("YF", 2), "pending", true}, {}, 10);
  ASSERT_TRUE(both);
  EXPECT_EQ(sids(*both), (std::vector<int>{6, 2}));

  // Descending, paged by seq: 6 5 | 4 3 | 2 1, and back.
  ChallengeFilter desc{"", "", true};
  auto p1 = fs().listChallenges(kService, "alice-0001", desc, {}, 2);
  ASSERT_TRUE(p1);
  EXPECT_EQ(sids(*p1), (std::vector<int>{6, 5}));
  EXPECT_TRUE(p1->has_next);
  auto p2 = fs().listChallenges(kService, "alice-0001", desc,
                                {PageCursor::Direction::kAfter, p1->last_seq}, 2);
  ASSERT_TRUE(p2);
  EXPECT_EQ(sids(*p2), (std::vector<int>{4, 3}));
  auto p3 = fs().listChallenges(kService, "alice-0001", desc,
                                {PageCursor::Direction::kAfter, p2->last_seq}, 2);
  ASSERT_TRUE(p3);
  EXPECT_EQ(sids(*p3), (std::vector<int>{2, 1}));
  EXPECT_FALSE(p3->has_next);
  auto back = fs().listChallenges(kService, "alice-0001", desc,
                                  {PageCursor::Direction::kBefore, p3->first_seq}, 2);
  ASSERT_TRUE(back);
  EXPECT_EQ(sids(*back), (std::vector<int>{4, 3}));

  // Ascending pages too.
  auto a1 = fs().listChallenges(kService, "alice-0001", {}, {}, 4);
  ASSERT_TRUE(a1);
  auto a2 = fs().listChallenges(kService, "alice-0001", {},
                                {PageCursor::Direction::kAfter, a1->last_seq}, 4);
  ASSERT_TRUE(a2);
  EXPECT_EQ(sids(*a2), (std::vector<int>{5, 6}));
}

TEST_P(FactorContract, MutateChallengeStoresChallengeAndFactor) {
  ASSERT_TRUE(fs().createWebhook(webhook(1, {"challenge.approved"}, "enabled")));
  ASSERT_TRUE(fs().createFactor(factor("alice-0001", 1, "push"), {}));
  ASSERT_TRUE(fs().createChallenge(challenge("alice-0001", 1, sidN("YF", 1)), {}, std::nullopt));
  std::string seen_factor;
  auto out =
      fs().mutateChallenge(kService, "alice-0001", sidN("YC", 1),
                           [&](const Challenge& c, const Factor& f) -> Result<ChallengeChange> {
                             seen_factor = f.sid;
                             ChallengeChange ch{c, f, {{"challenge.approved", R"({"c":1})"}}};
                             ch.challenge.status = "approved";
                             ch.challenge.date_responded = kT0 + 50;
                             ch.challenge.metadata = R"({"m":1})";
                             ch.challenge.date_updated = kT0 + 50;
                             ch.factor.status = "verified";
                             ch.factor.last_step = 77;
                             ch.factor.date_updated = kT0 + 50;
                             return ch;
                           });
  ASSERT_TRUE(out) << out.error().message;
  EXPECT_EQ(seen_factor, sidN("YF", 1));
  EXPECT_EQ(out->status, "approved");
  auto c = fs().getChallenge(kService, "alice-0001", sidN("YC", 1));
  ASSERT_TRUE(c && *c);
  EXPECT_EQ((*c)->status, "approved");
  EXPECT_EQ((*c)->date_responded, kT0 + 50);
  EXPECT_EQ((*c)->metadata, R"({"m":1})");
  EXPECT_EQ((*c)->details_fields.size(), 2u);
  auto f = fs().getFactor(kService, "alice-0001", sidN("YF", 1));
  ASSERT_TRUE(f && *f);
  EXPECT_EQ((*f)->status, "verified");
  EXPECT_EQ((*f)->last_step, 77);
  auto ds = deliveries();
  ASSERT_EQ(ds.size(), 1u);
  EXPECT_EQ(ds[0].body, R"({"c":1})");

  auto missing =
      fs().mutateChallenge(kService, "alice-0001", sidN("YC", 9),
                           [](const Challenge& c, const Factor& f) -> Result<ChallengeChange> {
                             return ChallengeChange{c, f, {}};
                           });
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().kind, ErrorKind::kNotFound);
}

// ---- factors: access tokens and webhooks --------------------------------------------------------

TEST_P(FactorContract, AccessTokensRoundTrip) {
  AccessToken t;
  t.sid = sidN("YK", 1);
  t.account_sid = kAccount;
  t.service_sid = kService;
  t.entity_identity = "alice-0001";
  t.factor_friendly_name = "phone";
  t.token = "eyJhbGciOiJIUzI1NiJ9.e30.sig";
  t.ttl = 300;
  t.date_created = kT0;
  ASSERT_TRUE(fs().createAccessToken(t));
  auto got = fs().getAccessToken(kService, t.sid);
  ASSERT_TRUE(got && *got);
  EXPECT_EQ((*got)->entity_identity, "alice-0001");
  EXPECT_EQ((*got)->factor_type, "push");
  EXPECT_EQ((*got)->factor_friendly_name, "phone");
  EXPECT_EQ((*got)->token, t.token);
  EXPECT_EQ((*got)->ttl, 300);
  EXPECT_EQ((*got)->date_created, kT0);
  EXPECT_FALSE(*fs().getAccessToken(kOtherService, t.sid));
}

TEST_P(FactorContract, WebhooksCrud) {
  ASSERT_TRUE(fs().createWebhook(webhook(1, {"factor.created", "factor.deleted"}, "enabled")));
  ASSERT_TRUE(fs().createWebhook(webhook(2, {"*"}, "disabled")));
  auto got = fs().getWebhook(kService, sidN("YW", 1));
  ASSERT_TRUE(got && *got);
  EXPECT_EQ((*got)->event_types, (std::vector<std::string>{"factor.created", "factor.deleted"}));
  EXPECT_EQ((*got)->webhook_url, "https://hooks.example/1");
  EXPECT_EQ((*got)->version, "v2");
  EXPECT_EQ((*got)->webhook_method, "POST");
  EXPECT_FALSE(*fs().getWebhook(kOtherService, sidN("YW", 1)));

  auto page = fs().listWebhooks(kService, {}, 10);
  ASSERT_TRUE(page);
  ASSERT_EQ(page->items.size(), 2u);
  EXPECT_EQ(page->items[0].sid, sidN("YW", 1));

  auto updated = fs().updateWebhook(kService, sidN("YW", 2), [](Webhook& w) -> Status {
    w.status = "enabled";
    w.event_types = {"challenge.denied"};
    w.friendly_name = "renamed";
    w.sid = "YWforged";
    w.date_updated = kT0 + 99;
    return {};
  });
  ASSERT_TRUE(updated);
  EXPECT_EQ(updated->sid, sidN("YW", 2));
  got = fs().getWebhook(kService, sidN("YW", 2));
  ASSERT_TRUE(got && *got);
  EXPECT_EQ((*got)->status, "enabled");
  EXPECT_EQ((*got)->friendly_name, "renamed");
  EXPECT_EQ((*got)->event_types, (std::vector<std::string>{"challenge.denied"}));
  EXPECT_EQ((*got)->date_updated, kT0 + 99);

  auto refused = fs().updateWebhook(
      kService, sidN("YW", 2), [](Webhook&) -> Status { return fail(Error::invalid("Status")); });
  EXPECT_FALSE(refused);
  auto missing = fs().updateWebhook(kService, sidN("YW", 9), [](Webhook&) -> Status { return {}; });
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().kind, ErrorKind::kNotFound);

  ASSERT_TRUE(fs().deleteWebhook(kService, sidN("YW", 1)));
  EXPECT_FALSE(*fs().getWebhook(kService, sidN("YW", 1)));
  auto again = fs().deleteWebhook(kService, sidN("YW", 1));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().kind, ErrorKind::kNotFound);
}

// ---- factors: deliveries ------------------------------------------------------------------------

TEST_P(FactorContract, DeliveriesAreClaimedLeasedTakenOverAndFinished) {
  ASSERT_TRUE(fs().createWebhook(webhook(1, {"*"}, "enabled")));
  ASSERT_TRUE(fs().createFactor(factor("alice-0001", 1), {{"factor.created", R"({"n":1})"}}));
  ASSERT_TRUE(fs().createFactor(factor("alice-0001", 2), {{"factor.created", R"({"n":2})"}}));
  WebhookDelivery later;
  later.sid = "WD" + std::string(32, 'f');
  later.kind = "push";
  later.account_sid = kAccount;
  later.service_sid = kService;
  later.body = "{}";
  later.next_try_ms = 5000;
  ASSERT_TRUE(fs().enqueueDelivery(later));

  auto a = fs().claimWebhookDeliveries(1000, 30000, 10, "lease-a");
  ASSERT_TRUE(a);
  ASSERT_EQ(a->size(), 2u);  // the push is not due yet
  for (const auto& d : *a) {
    EXPECT_EQ(d.status, "sending");
    EXPECT_EQ(d.lease_token, "lease-a");
    EXPECT_EQ(d.next_try_ms, 31000);
  }
  // Held by the lease: another claim gets only what is due and not leased.
  auto b = fs().claimWebhookDeliveries(6000, 30000, 10, "lease-b");
  ASSERT_TRUE(b);
  ASSERT_EQ(b->size(), 1u);
  EXPECT_EQ((*b)[0].sid, later.sid);
  EXPECT_EQ((*b)[0].kind, "push");

  // a's lease runs out: c takes both over.
  auto c = fs().claimWebhookDeliveries(31000, 30000, 10, "lease-c");
  ASSERT_TRUE(c);
  ASSERT_EQ(c->size(), 2u);

  // a finishes late: ignored (lost lease).
  WebhookDelivery late = (*a)[0];
  late.status = "delivered";
  late.tries = 1;
  ASSERT_TRUE(fs().finishWebhookDelivery(late));
  // c finishes: one delivered, one retried later.
  WebhookDelivery done = (*c)[0];
  done.status = "delivered";
  done.tries = 1;
  done.date_updated = kT0 + 40;
  ASSERT_TRUE(fs().finishWebhookDelivery(done));
  WebhookDelivery retry = (*c)[1];
  retry.status = "queued";
  retry.tries = 1;
  retry.error = "HTTP 500";
  retry.next_try_ms = 90000;
  ASSERT_TRUE(fs().finishWebhookDelivery(retry));
  // Finishing twice is ignored too (no lease any more).
  WebhookDelivery twice = done;
  twice.status = "failed";
  ASSERT_TRUE(fs().finishWebhookDelivery(twice));

  std::map<std::string, WebhookDelivery> by_sid;
  for (auto& d : deliveries()) by_sid[d.sid] = d;
  ASSERT_EQ(by_sid.size(), 3u);
  EXPECT_EQ(by_sid[done.sid].status, "delivered");
  EXPECT_EQ(by_sid[done.sid].lease_token, "");
  EXPECT_EQ(by_sid[done.sid].tries, 1);
  EXPECT_EQ(by_sid[done.sid].date_updated, kT0 + 40);
  EXPECT_EQ(by_sid[retry.sid].status, "queued");
  EXPECT_EQ(by_sid[retry.sid].error, "HTTP 500");
  EXPECT_EQ(by_sid[retry.sid].next_try_ms, 90000);

  // At 80 s only b's push is due again (its lease ran out at 36 s); the retry waits for 90 s.
  auto d = fs().claimWebhookDeliveries(80000, 30000, 10, "lease-d");
  ASSERT_TRUE(d);
  ASSERT_EQ(d->size(), 1u);
  EXPECT_EQ((*d)[0].sid, later.sid);
  auto e = fs().claimWebhookDeliveries(90000, 30000, 10, "lease-e");
  ASSERT_TRUE(e);
  ASSERT_EQ(e->size(), 1u);
  EXPECT_EQ((*e)[0].sid, retry.sid);
  EXPECT_EQ((*e)[0].tries, 1);
  EXPECT_EQ((*e)[0].error, "HTTP 500");

  // Newest first, paged.
  auto p1 = fs().listWebhookDeliveries(kService, {}, 2);
  ASSERT_TRUE(p1);
  ASSERT_EQ(p1->items.size(), 2u);
  EXPECT_EQ(p1->items[0].sid, later.sid);
  EXPECT_TRUE(p1->has_next);
}

TEST_P(FactorContract, ClaimLimitAndOrderByDueTime) {
  for (int n = 0; n < 5; ++n) {
    WebhookDelivery d;
    d.sid = sidN("WD", n);
    d.service_sid = kService;
    d.next_try_ms = 100 - n;  // the last queued is due first
    ASSERT_TRUE(fs().enqueueDelivery(d));
  }
  auto a = fs().claimWebhookDeliveries(1000, 100, 2, "l");
  ASSERT_TRUE(a);
  ASSERT_EQ(a->size(), 2u);
  EXPECT_EQ((*a)[0].sid, sidN("WD", 4));
  EXPECT_EQ((*a)[1].sid, sidN("WD", 3));
}

// ---- factors: purge and key rotation ------------------------------------------------------------

TEST_P(FactorContract, PurgeDeletesOldUnverifiedFactorsWithTheirChallenges) {
  Factor old_unverified = factor("alice-0001", 1, "push");
  Factor old_verified = factor("alice-0001", 2, "push");
  old_verified.status = "verified";
  Factor new_unverified = factor("alice-0001", 50, "push");
  ASSERT_TRUE(fs().createFactor(old_unverified, {}));
  ASSERT_TRUE(fs().createFactor(old_verified, {}));
  ASSERT_TRUE(fs().createFactor(new_unverified, {}));
  ASSERT_TRUE(
      fs().createChallenge(challenge("alice-0001", 1, old_unverified.sid), {}, std::nullopt));
  ASSERT_TRUE(fs().createChallenge(challenge("alice-0001", 2, old_verified.sid), {}, std::nullopt));

  auto purged = fs().purgeUnverifiedFactors(kT0 + 10);
  ASSERT_TRUE(purged);
  EXPECT_EQ(*purged, 1);
  EXPECT_FALSE(*fs().getFactor(kService, "alice-0001", old_unverified.sid));
  EXPECT_FALSE(*fs().getChallenge(kService, "alice-0001", sidN("YC", 1)));
  EXPECT_TRUE(*fs().getFactor(kService, "alice-0001", old_verified.sid));
  EXPECT_TRUE(*fs().getChallenge(kService, "alice-0001", sidN("YC", 2)));
  EXPECT_TRUE(*fs().getFactor(kService, "alice-0001", new_unverified.sid));
  EXPECT_EQ(*fs().purgeUnverifiedFactors(kT0 + 10), 0);
  // `before` is exclusive.
  EXPECT_EQ(*fs().purgeUnverifiedFactors(kT0 + 50), 0);
  EXPECT_EQ(*fs().purgeUnverifiedFactors(kT0 + 51), 1);
}

TEST_P(FactorContract, ResealPassesEverySecretThroughTheCallbackAtomically) {
  ASSERT_TRUE(fs().createFactor(factor("alice-0001", 1), {}));
  ASSERT_TRUE(fs().createFactor(factor("alice-0001", 2), {}));
  ASSERT_TRUE(fs().createFactor(factor("alice-0001", 3, "push"), {}));  // no secret
  std::string s1 = factor("alice-0001", 1).secret_sealed;

  // A failure halfway stores nothing.
  int calls = 0;
  auto failed = fs().resealFactorSecrets([&](const std::string& s) -> Result<std::string> {
    if (++calls == 2) return fail(Error::internal("key missing"));
    return "v2:" + s;
  });
  ASSERT_FALSE(failed);
  EXPECT_EQ((*fs().getFactor(kService, "alice-0001", sidN("YF", 1)))->secret_sealed, s1);

  std::vector<std::string> seen;
  auto n = fs().resealFactorSecrets([&](const std::string& s) -> Result<std::string> {
    seen.push_back(s);
    return "v2:" + s;
  });
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 2);
  EXPECT_EQ(seen.size(), 2u);
  EXPECT_EQ((*fs().getFactor(kService, "alice-0001", sidN("YF", 1)))->secret_sealed, "v2:" + s1);
  EXPECT_EQ((*fs().getFactor(kService, "alice-0001", sidN("YF", 3)))->secret_sealed, "");
}

// ---- factors: schema and concurrency ------------------------------------------------------------

TEST_P(FactorContract, SurvivesReopen) {
  ASSERT_TRUE(fs().createEntity(entity("alice-0001", 1)));
  ASSERT_TRUE(fs().createWebhook(webhook(1, {"*"}, "enabled")));
  reopen();  // the schema is not applied twice
  EXPECT_TRUE(*fs().getEntity(kService, "alice-0001"));
  EXPECT_TRUE(*fs().getWebhook(kService, sidN("YW", 1)));
}

TEST_P(FactorContract, ConcurrentMutationsOfOneFactorAllCount) {
  ASSERT_TRUE(fs().createFactor(factor("alice-0001", 1), {}));
  constexpr int kThreads = 8, kEach = 25;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        auto r = fs().mutateFactor(kService, "alice-0001", sidN("YF", 1),
                                   [](const Factor& f) -> Result<FactorChange> {
                                     Factor n = f;
                                     ++n.failed_attempts;
                                     return FactorChange{n, {}};
                                   });
        if (!r) ++failures;
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  auto got = fs().getFactor(kService, "alice-0001", sidN("YF", 1));
  ASSERT_TRUE(got && *got);
  EXPECT_EQ((*got)->failed_attempts, kThreads * kEach);
}

}  // namespace factors

// ---- PostgreSQL only: several nodes, migrations, failures ---------------------------------

class PostgresStore : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* url = postgresUrl();
    if (!url || !*url)
      GTEST_SKIP() << "VERIFYD_TEST_POSTGRES_URL is not set (test/storage/run_pg_contract.sh "
                      "sets it)";
    server_url_ = url;
    backend_ = std::make_unique<PgBackend>(server_url_);
    ASSERT_EQ(backend_->error(), "");
  }
  void TearDown() override { backend_.reset(); }
  std::unique_ptr<PgStore> node(PgStoreOptions options = {}) { return backend_->openPg(options); }

  std::string server_url_;
  std::unique_ptr<PgBackend> backend_;
};

TEST_F(PostgresStore, NodesStartingTogetherMigrateOnce) {
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 6; ++i)
    threads.emplace_back([&] {
      auto s = PgStore::open(backend_->url(), PgStoreOptions{1, 1, 3, 10000});
      if (s) ++ok;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 6);
  PgAdmin admin(backend_->url());
  ASSERT_TRUE(admin.ok());
  EXPECT_EQ(admin.exec("SELECT COUNT(*) FROM verifyd_schema"),
            std::to_string(PgStore::kSchemaVersion));
  EXPECT_EQ(admin.exec("SELECT MAX(version) FROM verifyd_schema"),
            std::to_string(PgStore::kSchemaVersion));
  ASSERT_TRUE(PgStore::migrate(backend_->url()));
  EXPECT_EQ(admin.exec("SELECT COUNT(*) FROM verifyd_schema"),
            std::to_string(PgStore::kSchemaVersion));
  // The due-attempts index is partial, as in SQLite.
  EXPECT_NE(
      admin.exec("SELECT indexdef FROM pg_indexes WHERE indexname = 'attempts_due'").find("WHERE"),
      std::string::npos);
}

TEST_F(PostgresStore, ANewerSchemaIsRefused) {
  ASSERT_TRUE(PgStore::migrate(backend_->url()));
  PgAdmin admin(backend_->url());
  ASSERT_EQ(admin.exec("INSERT INTO verifyd_schema VALUES (999)"), "");
  auto s = PgStore::open(backend_->url());
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind, ErrorKind::kInternal);
}

TEST_F(PostgresStore, AnUnreachableServerIsUnavailableNotAHang) {
  const auto t0 = std::chrono::steady_clock::now();
  auto s = PgStore::open("postgresql://postgres@127.0.0.1:1/verifyd");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().kind, ErrorKind::kUnavailable);
  // A host that does not answer at all: connect_timeout bounds the wait.
  auto dark = PgStore::open("postgresql://postgres@10.255.255.1:5432/verifyd",
                            PgStoreOptions{1, 1, 1, 1000});
  ASSERT_FALSE(dark);
  EXPECT_EQ(dark.error().kind, ErrorKind::kUnavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
}

TEST_F(PostgresStore, EveryNodeSeesAChangeAtOnce) {
  auto a = node(), b = node();
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->createAccount(Account{kAccount, "main", "mac1", "sealed", kNow}));
  EXPECT_EQ((**b->findCredential(kAccount)).secret_mac, "mac1");
  ASSERT_TRUE(a->createService(service(1)));
  EXPECT_EQ((**b->getService(kAccount, sidN("VA", 1))).settings.code_length, 6);
  ASSERT_TRUE(b->updateService(kAccount, sidN("VA", 1), [](Service& sv) -> Status {
    sv.settings.code_length = 8;
    return {};
  }));
  EXPECT_EQ((**a->getService(kAccount, sidN("VA", 1))).settings.code_length, 8);
  ASSERT_TRUE(a->setGeoPermission(kAccount, GeoPermission{"sms", "FR", false, kNow}));
  ASSERT_EQ(b->geoPermissions(kAccount)->size(), 1u);
  ASSERT_TRUE(b->setGeoPermission(kAccount, GeoPermission{"sms", "FR", true, kNow}));
  EXPECT_TRUE((*a->geoPermissions(kAccount))[0].allowed);
  ASSERT_TRUE(b->deleteService(kAccount, sidN("VA", 1)));
  EXPECT_FALSE(*a->getService(kAccount, sidN("VA", 1)));
}

TEST_F(PostgresStore, NodesSerialiseStartsAndChecksOfOneNumber) {
  auto a = node(), b = node();
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->createService(service(1)));
  const std::string to = "+15017122661";
  std::vector<std::thread> threads;
  for (int i = 0; i < 20; ++i)
    threads.emplace_back([&, i] {
      Store& s = i % 2 ? static_cast<Store&>(*a) : static_cast<Store&>(*b);
      auto r = startWith(s, sidN("VA", 1), to, kNow, {},
                         newOrResend(sidN("VE", i + 1), sidN("VA", 1), to, kNow));
      EXPECT_TRUE(r) << r.error().message;
      auto m = s.mutate(VerificationKey{sidN("VA", 1), {}, to},
                        [](const Verification& cur) -> Result<Verification> {
                          Verification next = cur;
                          next.check_attempts++;
                          return next;
                        });
      EXPECT_TRUE(m) << m.error().message;
    });
  for (auto& t : threads) t.join();
  auto got = **a->getVerification(VerificationKey{sidN("VA", 1), {}, to});
  EXPECT_EQ(got.send_attempts.size(), 20u);
  EXPECT_EQ(got.check_attempts, 20);
  EXPECT_EQ(b->listMessages(kAccount, to, {}, 100)->items.size(), 20u);
}

TEST_F(PostgresStore, NodesNeverClaimTheSameAttempt) {
  auto a = node(), b = node();
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->createService(service(1)));
  const std::int64_t t0 = kNow * 1000;
  for (int i = 1; i <= 30; ++i) {
    std::string to = "+1501712" + std::to_string(5000 + i);
    Verification v = verification(sidN("VE", i), sidN("VA", 1), to, kNow);
    ASSERT_TRUE(a->start(v.service_sid, to, kNow,
                         [&](const std::optional<Verification>&) -> Result<StartWrite> {
                           return StartWrite{v, true, std::nullopt, attempt(v, sidN("VL", i), t0)};
                         }));
  }
  std::mutex mu;
  std::vector<std::string> claimed;
  std::vector<std::thread> threads;
  for (int w = 0; w < 6; ++w)
    threads.emplace_back([&, w] {
      PgStore& s = w % 2 ? *a : *b;
      for (;;) {
        auto got = s.claimAttempts(t0, 60000, 2, "w" + std::to_string(w));
        EXPECT_TRUE(got);
        if (!got || got->empty()) break;
        std::lock_guard lock(mu);
        for (const auto& x : *got) claimed.push_back(x.sid);
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(claimed.size(), 30u);
  EXPECT_EQ(std::set<std::string>(claimed.begin(), claimed.end()).size(), 30u);
}

TEST_F(PostgresStore, AStartWaitsForItsNumberAndGivesUpInBoundedTime) {
  auto s = node(PgStoreOptions{2, 1, 3, 700});
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->createService(service(1)));
  const std::string to = "+15017122661";
  // Another session holds the number's lock: the start waits, then reports the store busy.
  PgAdmin holder(backend_->url());
  ASSERT_EQ(holder.exec("SELECT pg_advisory_lock(hashtextextended('to:" + to + "', 0))"), "");
  const auto t0 = std::chrono::steady_clock::now();
  auto r = startWith(*s, sidN("VA", 1), to, kNow, {},
                     newOrResend(sidN("VE", 1), sidN("VA", 1), to, kNow));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::kUnavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  // Another number is not concerned; once released, the number goes again.
  ASSERT_TRUE(startWith(*s, sidN("VA", 1), "+15017122662", kNow, {},
                        newOrResend(sidN("VE", 2), sidN("VA", 1), "+15017122662", kNow)));
  ASSERT_EQ(holder.exec("SELECT pg_advisory_unlock_all()"), "");
  ASSERT_TRUE(startWith(*s, sidN("VA", 1), to, kNow, {},
                        newOrResend(sidN("VE", 3), sidN("VA", 1), to, kNow)));
}

TEST_F(PostgresStore, RecoversByItselfWhenItsConnectionsAreCut) {
  auto s = node(PgStoreOptions{3, 2, 3, 10000});
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->createService(service(1)));
  // Use every connection once so that each is open.
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; ++i)
    threads.emplace_back([&, i] {
      std::string to = "+1501712" + std::to_string(6000 + i);
      EXPECT_TRUE(startWith(*s, sidN("VA", 1), to, kNow, {},
                            newOrResend(sidN("VE", i + 1), sidN("VA", 1), to, kNow)));
      EXPECT_TRUE(*s->getService(kAccount, sidN("VA", 1)));
    });
  for (auto& t : threads) t.join();
  PgAdmin admin(server_url_);
  ASSERT_TRUE(admin.ok());
  std::string db = backend_->url().substr(backend_->url().rfind('/') + 1);
  EXPECT_NE(admin.exec("SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
                       "datname = '" +
                       db + "' AND pid <> pg_backend_pid()"),
            "0");
  // Connections that died while idle are replaced on their next use: nothing fails.
  for (int i = 0; i < 6; ++i) {
    auto got = s->getService(kAccount, sidN("VA", 1));
    EXPECT_TRUE(got && *got) << (got ? "" : got.error().message);
    std::string to = "+1501712" + std::to_string(7000 + i);
    auto r = startWith(*s, sidN("VA", 1), to, kNow, {},
                       newOrResend(sidN("VE", 20 + i), sidN("VA", 1), to, kNow));
    EXPECT_TRUE(r) << (r ? "" : r.error().message);
    EXPECT_TRUE(s->putSetting("k", std::to_string(i)));
  }
}

TEST_F(PostgresStore, ServerNoticesAreNotPrintedToStderr) {
  ASSERT_TRUE(PgStore::migrate(backend_->url()));
  // Migrating an up-to-date database makes the server send a NOTICE ("relation
  // "verifyd_schema" already exists, skipping"), which libpq would print to stderr.
  ::testing::internal::CaptureStderr();
  auto s = node();
  std::string printed = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(s);
  EXPECT_EQ(printed.find("NOTICE"), std::string::npos) << printed;
  EXPECT_EQ(printed.find("already exists"), std::string::npos) << printed;
}

TEST_F(PostgresStore, AVersion1DatabaseIsUpgradedInPlace) {
  {
    auto s = node();
    ASSERT_TRUE(s);
    ASSERT_TRUE(s->createService(service(1)));
  }
  // Back to schema version 1, as a database written before factors existed.
  PgAdmin admin(backend_->url());
  ASSERT_TRUE(admin.ok());
  ASSERT_EQ(admin.exec("DROP TABLE entities, factors, challenges, access_tokens, webhooks, "
                       "webhook_deliveries; DELETE FROM verifyd_schema WHERE version > 1"),
            "");
  auto s = node();
  ASSERT_TRUE(s);
  EXPECT_EQ(admin.exec("SELECT string_agg(version::text, ',' ORDER BY version) FROM "
                       "verifyd_schema"),
            "1,2");
  EXPECT_TRUE(*s->getService(kAccount, sidN("VA", 1)));
  Entity e{sidN("YE", 1), kAccount, sidN("VA", 1), "alice-0001", kNow, kNow};
  ASSERT_TRUE(s->createEntity(e));
  EXPECT_TRUE(*s->getEntity(sidN("VA", 1), "alice-0001"));
  // The due-deliveries index is partial, as in SQLite.
  EXPECT_NE(admin
                .exec("SELECT indexdef FROM pg_indexes WHERE indexname = "
                      "'webhook_deliveries_due'")
                .find("WHERE"),
            std::string::npos);
}

TEST_F(PostgresStore, NodesNeverClaimTheSameWebhookDelivery) {
  auto a = node(), b = node();
  ASSERT_TRUE(a && b);
  const std::int64_t t0 = kNow * 1000;
  constexpr int kDeliveries = 40;
  for (int i = 1; i <= kDeliveries; ++i) {
    WebhookDelivery d;
    d.sid = sidN("WD", i);
    d.account_sid = kAccount;
    d.service_sid = factors::kService;
    d.url = "https://hooks.example/" + std::to_string(i);
    d.body = "{}";
    d.next_try_ms = t0 + i;
    ASSERT_TRUE((i % 2 ? *a : *b).enqueueDelivery(d));
  }
  std::mutex mu;
  std::map<std::string, std::string> claimed_by;  // sid -> lease token
  std::atomic<int> claims{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < 6; ++w)
    threads.emplace_back([&, w] {
      FactorStore& s = w % 2 ? static_cast<FactorStore&>(*a) : static_cast<FactorStore&>(*b);
      const std::string token = "w" + std::to_string(w);
      for (;;) {
        auto got = s.claimWebhookDeliveries(t0 + 1000, 60000, 3, token);
        EXPECT_TRUE(got) << got.error().message;
        if (!got || got->empty()) break;
        std::lock_guard lock(mu);
        for (const auto& d : *got) {
          ++claims;
          EXPECT_EQ(d.lease_token, token);
          EXPECT_EQ(d.next_try_ms, t0 + 1000 + 60000);
          claimed_by[d.sid] = token;
        }
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(claims.load(), kDeliveries);
  EXPECT_EQ(claimed_by.size(), static_cast<std::size_t>(kDeliveries));
  // What is stored agrees: each delivery is leased to the one worker that got it.
  auto page = a->listWebhookDeliveries(factors::kService, {}, 100);
  ASSERT_TRUE(page);
  ASSERT_EQ(page->items.size(), static_cast<std::size_t>(kDeliveries));
  for (const auto& d : page->items) {
    EXPECT_EQ(d.status, "sending");
    EXPECT_EQ(d.lease_token, claimed_by[d.sid]) << d.sid;
  }
  // Nothing is due again before the leases end.
  EXPECT_TRUE(b->claimWebhookDeliveries(t0 + 2000, 60000, 100, "late")->empty());
}

TEST_F(PostgresStore, NodesChangingOneFactorLoseNoUpdate) {
  auto a = node(), b = node();
  ASSERT_TRUE(a && b);
  const std::string& svc = factors::kService;
  const std::string identity = "alice-0001";
  Factor f;
  f.sid = sidN("YF", 1);
  f.account_sid = kAccount;
  f.service_sid = svc;
  f.entity_sid = sidN("YE", 1);
  f.identity = identity;
  f.factor_type = "push";
  f.date_created = f.date_updated = kNow;
  ASSERT_TRUE(a->createFactor(f, {}));
  Challenge c;
  c.sid = sidN("YC", 1);
  c.account_sid = kAccount;
  c.service_sid = svc;
  c.entity_sid = f.entity_sid;
  c.identity = identity;
  c.factor_sid = f.sid;
  c.factor_type = "push";
  c.date_created = c.date_updated = kNow;
  ASSERT_TRUE(b->createChallenge(c, {}, std::nullopt));
  Webhook w;
  w.sid = sidN("YW", 1);
  w.account_sid = kAccount;
  w.service_sid = svc;
  w.event_types = {"*"};
  w.webhook_url = "https://hooks.example/1";
  ASSERT_TRUE(a->createWebhook(w));

  // Half the threads change the factor, half the challenge (and its factor, with an event),
  // on both nodes at once.
  constexpr int kThreads = 8, kEach = 25;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      FactorStore& s = (t / 2) % 2 ? static_cast<FactorStore&>(*a) : static_cast<FactorStore&>(*b);
      for (int i = 0; i < kEach; ++i) {
        bool ok;
        if (t % 2) {
          ok = s.mutateFactor(svc, identity, f.sid, [](const Factor& cur) -> Result<FactorChange> {
                  Factor n = cur;
                  ++n.failed_attempts;
                  return FactorChange{n, {}};
                }).has_value();
        } else {
          ok = s.mutateChallenge(
                    svc, identity, c.sid,
                    [](const Challenge& ch, const Factor& fa) -> Result<ChallengeChange> {
                      ChallengeChange next{ch, fa, {{"challenge.denied", "{}"}}};
                      ++next.challenge.failed_attempts;
                      ++next.factor.failed_attempts;
                      return next;
                    })
                   .has_value();
        }
        if (!ok) ++failures;
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  auto got = b->getFactor(svc, identity, f.sid);
  ASSERT_TRUE(got && *got);
  EXPECT_EQ((*got)->failed_attempts, kThreads * kEach);
  auto ch = a->getChallenge(svc, identity, c.sid);
  ASSERT_TRUE(ch && *ch);
  EXPECT_EQ((*ch)->failed_attempts, kThreads / 2 * kEach);
  // Every challenge change committed its event, and only those.
  auto page = a->listWebhookDeliveries(svc, {}, 1000);
  ASSERT_TRUE(page);
  EXPECT_EQ(page->items.size(), static_cast<std::size_t>(kThreads / 2 * kEach));
}

}  // namespace
}  // namespace verifyd
