// The FactorStore methods of SqliteStore: entities, factors, challenges, access tokens,
// webhooks and the webhook deliveries their events fan out to.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <set>
#include <thread>

#include "fakes.h"
#include "verifyd/storage/sqlite/sqlite_store.h"

namespace verifyd {
namespace {

const std::string kAccount = "AC" + std::string(32, 'a');
const std::string kService = "VA" + std::string(32, 'a');
const std::string kOtherService = "VA" + std::string(32, 'b');
constexpr UnixTime kT0 = 1700000000;

std::string sidN(const char* prefix, int n) {
  std::string digits = std::to_string(n);
  return prefix + std::string(32 - digits.size(), '0') + digits;
}

class FactorStoreTest : public ::testing::Test {
 protected:
  testing::TempDir dir_;  // first: outlives the store
  void SetUp() override { reopen(); }
  void TearDown() override { store_.reset(); }
  void reopen() {
    store_.reset();
    auto opened = SqliteStore::open(dir_.file("db"), false);
    ASSERT_TRUE(opened) << opened.error().message;
    store_ = std::move(*opened);
  }
  FactorStore& fs() { return *store_; }

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

  std::unique_ptr<SqliteStore> store_;
};

// ---- entities

TEST_F(FactorStoreTest, EntitiesCreateGetListAndRefuseDuplicates) {
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

TEST_F(FactorStoreTest, GetOrCreateEntityIsIdempotent) {
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

TEST_F(FactorStoreTest, DeleteEntityCascadesToFactorsAndChallenges) {
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

// ---- factors

TEST_F(FactorStoreTest, FactorsRoundTripEveryField) {
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

TEST_F(FactorStoreTest, MutateFactorStoresTheChangeAndKeepsIds) {
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

TEST_F(FactorStoreTest, DeleteFactorRemovesItsChallenges) {
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

// ---- events

TEST_F(FactorStoreTest, EventsFanOutOnlyToEnabledSubscribedWebhooks) {
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

// ---- challenges

TEST_F(FactorStoreTest, CreateChallengeQueuesThePushInTheSameWrite) {
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

TEST_F(FactorStoreTest, ListChallengesFiltersAndOrders) {
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

TEST_F(FactorStoreTest, MutateChallengeStoresChallengeAndFactor) {
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

// ---- access tokens and webhooks

TEST_F(FactorStoreTest, AccessTokensRoundTrip) {
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

TEST_F(FactorStoreTest, WebhooksCrud) {
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

// ---- deliveries

TEST_F(FactorStoreTest, DeliveriesAreClaimedLeasedTakenOverAndFinished) {
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

TEST_F(FactorStoreTest, ClaimLimitAndOrderByDueTime) {
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

// ---- purge and key rotation

TEST_F(FactorStoreTest, PurgeDeletesOldUnverifiedFactorsWithTheirChallenges) {
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

TEST_F(FactorStoreTest, ResealPassesEverySecretThroughTheCallbackAtomically) {
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

// ---- schema and concurrency

TEST_F(FactorStoreTest, SurvivesReopen) {
  ASSERT_TRUE(fs().createEntity(entity("alice-0001", 1)));
  ASSERT_TRUE(fs().createWebhook(webhook(1, {"*"}, "enabled")));
  reopen();  // the schema is not applied twice
  EXPECT_TRUE(*fs().getEntity(kService, "alice-0001"));
  EXPECT_TRUE(*fs().getWebhook(kService, sidN("YW", 1)));
}

TEST_F(FactorStoreTest, ConcurrentMutationsOfOneFactorAllCount) {
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

}  // namespace
}  // namespace verifyd
