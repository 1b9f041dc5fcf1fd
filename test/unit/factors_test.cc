// FactorService: entities, TOTP and push factors, challenges, notifications, access tokens and
// webhooks, on a fake clock, with the real SQLite store and OpenSSL crypto underneath.
#include "verifyd/core/factors.h"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <nlohmann/json.hpp>

#include "fakes.h"
#include "verifyd/api/twilio/base64.h"
#include "verifyd/common/base32.h"
#include "verifyd/common/sid.h"
#include "verifyd/common/time_format.h"
#include "verifyd/core/service_registry.h"
#include "verifyd/core/totp.h"
#include "verifyd/crypto/factor_crypto.h"
#include "verifyd/storage/sqlite/sqlite_store.h"

namespace verifyd::testing {

// A device's P-256 key, as the Verify Push SDKs hold one, kept as PEM. Shared with
// factors_router_test.cc.
std::string newDeviceKey() {
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<std::size_t>(n));
  BIO_free(bio);
  EVP_PKEY_free(key);
  return pem;
}

namespace {
EVP_PKEY* readKey(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  return key;
}

std::string derSignature(const std::string& pem, std::string_view message) {
  EVP_PKEY* key = readKey(pem);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key);
  std::size_t len = 0;
  EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(message.data()),
                 message.size());
  std::string sig(len, '\0');
  EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                 reinterpret_cast<const unsigned char*>(message.data()), message.size());
  sig.resize(len);
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(key);
  return sig;
}

std::string base64url(std::string_view bytes) {
  std::string s = twilio::base64Encode(bytes);
  for (auto& c : s) c = c == '+' ? '-' : c == '/' ? '_' : c;
  while (!s.empty() && s.back() == '=') s.pop_back();
  return s;
}
}  // namespace

// Base64 of the DER SubjectPublicKeyInfo: what a device sends as Binding.PublicKey.
std::string deviceSpki(const std::string& pem) {
  EVP_PKEY* key = readKey(pem);
  unsigned char* der = nullptr;
  int n = i2d_PUBKEY(key, &der);
  std::string out = twilio::base64Encode(std::string_view(reinterpret_cast<char*>(der), n));
  OPENSSL_free(der);
  EVP_PKEY_free(key);
  return out;
}

// What a device sends to verify its factor: Base64 of a DER ECDSA-SHA256 signature.
std::string deviceSignDer(const std::string& pem, std::string_view message) {
  return twilio::base64Encode(derSignature(pem, message));
}

// A compact JWS (ES256, signature r||s) over `payload_json`: a device's answer to a challenge.
std::string deviceJws(const std::string& pem, const std::string& payload_json) {
  std::string input = base64url(R"({"typ":"JWT","alg":"ES256"})") + "." + base64url(payload_json);
  std::string der = derSignature(pem, input);
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
  std::string raw(64, '\0');
  BN_bn2binpad(ECDSA_SIG_get0_r(sig), reinterpret_cast<unsigned char*>(raw.data()), 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(sig), reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
  ECDSA_SIG_free(sig);
  return input + "." + base64url(raw);
}

}  // namespace verifyd::testing

namespace verifyd {
namespace {

using nlohmann::json;

constexpr const char* kIdentity = "ff483d1ff591898a9942916050d2ca3f";

class CountingDelivery final : public Delivery {
 public:
  Result<ComposedMessage> compose(const ComposeRequest&) const override {
    return fail(Error::internal("unused"));
  }
  bool dispatches(std::string_view) const override { return false; }
  void queued() override {}
  Status receipt(const Receipt&) override { return {}; }
  void eventsQueued() override { ++events_queued; }
  int events_queued = 0;
};

class FactorServiceTest : public ::testing::Test {
 protected:
  testing::TempDir dir_;  // first: outlives the store
  void SetUp() override {
    store_ = std::move(*SqliteStore::open(dir_.file("db"), false));
    services_ = std::make_unique<ServiceRegistry>(*store_, clock_, random_);
    factors_ = std::make_unique<FactorService>(*store_, *store_, crypto_, clock_, random_,
                                               FactorOptions{}, &delivery_);
    ServiceSettings s;
    s.friendly_name = "Owl Bank";
    service_ = services_->create(account_, s)->sid;
  }
  void TearDown() override {
    factors_.reset();
    store_.reset();
  }

  NewFactor totpFactor(NewFactorParams p = {}) {
    if (!p.friendly_name) p.friendly_name = "John's phone";
    p.factor_type = "totp";
    auto f = factors_->createFactor(account_, service_, kIdentity, p);
    EXPECT_TRUE(f) << f.error().message;
    return *f;
  }
  std::string seedOf(const NewFactor& f) { return *base32Decode(f.secret); }
  std::string codeAt(const NewFactor& f, UnixTime t) {
    return totpCode(crypto_, f.factor.totp, seedOf(f), t / f.factor.totp.time_step);
  }
  // A code that matches no step within the skew around now.
  std::string wrongCode(const NewFactor& f) {
    std::string code(static_cast<std::size_t>(f.factor.totp.code_length), '0');
    for (int digit = 0;; ++digit) {
      std::fill(code.begin(), code.end(), static_cast<char>('0' + digit));
      bool used = false;
      for (int d = -2; d <= 2; ++d)
        used |= codeAt(f, clock_.now() + d * f.factor.totp.time_step) == code;
      if (!used) return code;
    }
  }
  Factor verifiedTotp(NewFactor& f) {
    FactorUpdateParams p;
    p.auth_payload = codeAt(f, clock_.now());
    auto r = factors_->updateFactor(account_, service_, kIdentity, f.factor.sid, p);
    EXPECT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->status, "verified");
    return *r;
  }
  std::vector<WebhookDelivery> deliveries() {
    auto page = store_->listWebhookDeliveries(service_, {}, 100);
    EXPECT_TRUE(page);
    return page ? page->items : std::vector<WebhookDelivery>{};
  }
  Webhook hookAll() {
    WebhookParams p;
    p.friendly_name = "all";
    p.event_types = std::vector<std::string>{"*"};
    p.webhook_url = "https://hooks.example/verify";
    auto w = factors_->createWebhook(account_, service_, p);
    EXPECT_TRUE(w) << w.error().message;
    return *w;
  }

  testing::FakeClock clock_;
  testing::FakeRandom random_;
  OpenSslFactorCrypto crypto_{std::string(32, 'f'), "", std::string(32, 'j')};
  CountingDelivery delivery_;
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<ServiceRegistry> services_;
  std::unique_ptr<FactorService> factors_;
  std::string account_ = "AC" + std::string(32, 'a');
  std::string service_;
};

// ---- entities

TEST_F(FactorServiceTest, EntitiesAreValidatedUniqueAndOwned) {
  EXPECT_EQ(factors_->createEntity(account_, service_, std::nullopt).error().kind,
            ErrorKind::kMissingArgument);
  for (const char* bad : {"short", "has space 12345", "x/slash/12345", ""})
    EXPECT_EQ(factors_->createEntity(account_, service_, std::string(bad)).error().param,
              "Identity")
        << bad;
  EXPECT_FALSE(factors_->createEntity(account_, service_, std::string(65, 'a')));
  auto e = factors_->createEntity(account_, service_, std::string(kIdentity));
  ASSERT_TRUE(e) << e.error().message;
  EXPECT_TRUE(isSid(e->sid, "YE"));
  EXPECT_EQ(e->date_created, clock_.now());
  EXPECT_EQ(factors_->createEntity(account_, service_, std::string(kIdentity)).error().kind,
            ErrorKind::kDuplicateEntity);
  EXPECT_EQ(factors_->fetchEntity(account_, service_, kIdentity)->sid, e->sid);
  EXPECT_EQ(factors_->listEntities(account_, service_, {}, 50)->items.size(), 1u);
  const std::string other = "AC" + std::string(32, 'b');
  EXPECT_EQ(factors_->fetchEntity(other, service_, kIdentity).error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(factors_->createEntity(other, service_, std::string(kIdentity)).error().kind,
            ErrorKind::kNotFound);
}

TEST_F(FactorServiceTest, DeletingAnEntityDeletesItsFactorsWithEvents) {
  hookAll();
  auto a = totpFactor();
  auto b = totpFactor();
  ASSERT_TRUE(factors_->deleteEntity(account_, service_, kIdentity));
  EXPECT_EQ(factors_->fetchEntity(account_, service_, kIdentity).error().kind,
            ErrorKind::kNotFound);
  EXPECT_EQ(factors_->fetchFactor(account_, service_, kIdentity, a.factor.sid).error().kind,
            ErrorKind::kNotFound);
  int deleted = 0;
  for (const auto& d : deliveries())
    if (json::parse(d.body)["type"] == "factor.deleted") ++deleted;
  EXPECT_EQ(deleted, 2);
  EXPECT_EQ(factors_->deleteEntity(account_, service_, kIdentity).error().kind,
            ErrorKind::kNotFound);
}

// ---- TOTP factors

TEST_F(FactorServiceTest, TotpFactorGetsASealedSeedAndItsUriOnce) {
  auto f = totpFactor();
  EXPECT_TRUE(isSid(f.factor.sid, "YF"));
  EXPECT_EQ(f.factor.status, "unverified");
  EXPECT_EQ(seedOf(f).size(), 20u);
  EXPECT_EQ(f.secret.size(), 32u);
  EXPECT_EQ(f.uri, "otpauth://totp/Owl%20Bank:John%27s%20phone?secret=" + f.secret +
                       "&issuer=Owl%20Bank&algorithm=SHA1&digits=6&period=30");
  // Stored sealed, never in clear.
  auto stored = store_->getFactor(service_, kIdentity, f.factor.sid);
  ASSERT_TRUE(stored && *stored);
  EXPECT_EQ((*stored)->secret_sealed.find(seedOf(f)), std::string::npos);
  EXPECT_EQ(*crypto_.openSecret((*stored)->secret_sealed), seedOf(f));
  // The entity came with it.
  auto e = factors_->fetchEntity(account_, service_, kIdentity);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->sid, f.factor.entity_sid);
  EXPECT_GE(delivery_.events_queued, 1);
}

TEST_F(FactorServiceTest, TotpConfigDefaultsComeFromTheServiceAndAreValidated) {
  ASSERT_TRUE(services_->update(account_, service_, [](ServiceSettings& s) -> Status {
    s.totp_issuer = "Acme";
    s.totp_time_step = 60;
    s.totp_code_length = 8;
    s.totp_skew = 2;
    return {};
  }));
  auto f = totpFactor();
  EXPECT_EQ(f.factor.totp.time_step, 60);
  EXPECT_EQ(f.factor.totp.code_length, 8);
  EXPECT_EQ(f.factor.totp.skew, 2);
  EXPECT_NE(f.uri.find("otpauth://totp/Acme:"), std::string::npos);
  EXPECT_NE(f.uri.find("&digits=8&period=60"), std::string::npos);

  NewFactorParams p;
  p.friendly_name = "x";
  p.factor_type = "totp";
  p.time_step = 15;
  EXPECT_EQ(factors_->createFactor(account_, service_, kIdentity, p).error().param,
            "Config.TimeStep");
  p.time_step.reset();
  p.alg = "md5";
  EXPECT_EQ(factors_->createFactor(account_, service_, kIdentity, p).error().param, "Config.Alg");
  p.alg = "sha256";
  p.binding_secret = "not base32!";
  EXPECT_EQ(factors_->createFactor(account_, service_, kIdentity, p).error().param,
            "Binding.Secret");
  p.binding_secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
  auto given = factors_->createFactor(account_, service_, kIdentity, p);
  ASSERT_TRUE(given) << given.error().message;
  EXPECT_EQ(given->secret, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP");
  EXPECT_EQ(given->factor.totp.alg, "sha256");
  p.factor_type = "passkeys";
  EXPECT_EQ(factors_->createFactor(account_, service_, kIdentity, p).error().param, "FactorType");
  p.factor_type.reset();
  EXPECT_EQ(factors_->createFactor(account_, service_, kIdentity, p).error().kind,
            ErrorKind::kMissingArgument);
  p.factor_type = "totp";
  p.metadata = R"({"os": 1})";
  EXPECT_EQ(factors_->createFactor(account_, service_, kIdentity, p).error().param, "Metadata");
  EXPECT_EQ(factors_->createFactor(account_, service_, "bad id", p).error().param, "Identity");
}

TEST_F(FactorServiceTest, WrongTotpCodeLeavesTheFactorUnverifiedThenTheRightOneVerifies) {
  auto hook = hookAll();
  auto f = totpFactor();
  FactorUpdateParams p;
  p.auth_payload = wrongCode(f);
  auto r = factors_->updateFactor(account_, service_, kIdentity, f.factor.sid, p);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->status, "unverified");
  EXPECT_EQ(r->failed_attempts, 1);
  // A code of the previous step is within the skew.
  p.auth_payload = codeAt(f, clock_.now() - 30);
  r = factors_->updateFactor(account_, service_, kIdentity, f.factor.sid, p);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->status, "verified");
  EXPECT_EQ(r->failed_attempts, 0);
  EXPECT_EQ(r->last_step, clock_.now() / 30 - 1);
  // factor.verified, with the payload's fields.
  auto all = deliveries();
  ASSERT_FALSE(all.empty());
  json event = json::parse(all.front().body);
  EXPECT_EQ(event["type"], "factor.verified");
  EXPECT_EQ(all.front().webhook_sid, hook.sid);
  EXPECT_EQ(event["account_sid"], account_);
  EXPECT_EQ(event["service_sid"], service_);
  EXPECT_EQ(event["entity_identity"], kIdentity);
  EXPECT_EQ(event["factor_sid"], f.factor.sid);
  EXPECT_EQ(event["factor_type"], "totp");
  EXPECT_EQ(event["factor_friendly_name"], "John's phone");
  EXPECT_EQ(event["date_created"], formatIso8601(clock_.now()));
  EXPECT_EQ(event["uuid"].get<std::string>().size(), 36u);
}

TEST_F(FactorServiceTest, FifthWrongCodeLocksTheFactor) {
  auto f = totpFactor();
  FactorUpdateParams p;
  p.auth_payload = wrongCode(f);
  for (int i = 1; i <= 4; ++i) {
    auto r = factors_->updateFactor(account_, service_, kIdentity, f.factor.sid, p);
    ASSERT_TRUE(r) << i;
    EXPECT_EQ(r->failed_attempts, i);
  }
  EXPECT_EQ(factors_->updateFactor(account_, service_, kIdentity, f.factor.sid, p).error().kind,
            ErrorKind::kFactorMaxAttempts);
  p.auth_payload = codeAt(f, clock_.now());
  EXPECT_EQ(factors_->updateFactor(account_, service_, kIdentity, f.factor.sid, p).error().kind,
            ErrorKind::kFactorMaxAttempts);
  // Other changes still apply.
  FactorUpdateParams rename;
  rename.friendly_name = "renamed";
  EXPECT_EQ(
      factors_->updateFactor(account_, service_, kIdentity, f.factor.sid, rename)->friendly_name,
      "renamed");
}

TEST_F(FactorServiceTest, FactorUpdateChangesNameAndConfig) {
  auto f = totpFactor();
  clock_.advance(10);
  FactorUpdateParams p;
  p.friendly_name = "Work phone";
  p.code_length = 8;
  p.skew = 0;
  auto r = factors_->updateFactor(account_, service_, kIdentity, f.factor.sid, p);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->friendly_name, "Work phone");
  EXPECT_EQ(r->totp.code_length, 8);
  EXPECT_EQ(r->totp.skew, 0);
  EXPECT_EQ(r->date_updated, clock_.now());
  p.code_length = 9;
  EXPECT_EQ(factors_->updateFactor(account_, service_, kIdentity, f.factor.sid, p).error().param,
            "Config.CodeLength");
  EXPECT_EQ(factors_->updateFactor(account_, service_, kIdentity, "YF" + std::string(32, '0'), {})
                .error()
                .kind,
            ErrorKind::kNotFound);
}

TEST_F(FactorServiceTest, DeleteFactorRaisesFactorDeleted) {
  hookAll();
  auto f = totpFactor();
  ASSERT_TRUE(factors_->deleteFactor(account_, service_, kIdentity, f.factor.sid));
  EXPECT_EQ(json::parse(deliveries().front().body)["type"], "factor.deleted");
  EXPECT_EQ(factors_->deleteFactor(account_, service_, kIdentity, f.factor.sid).error().kind,
            ErrorKind::kNotFound);
}

TEST_F(FactorServiceTest, UnverifiedFactorsArePurgedAfterTheirTtl) {
  auto old = totpFactor();
  auto kept = totpFactor();
  verifiedTotp(kept);
  clock_.advance(86400 - 10);
  auto young = totpFactor();
  clock_.advance(20);
  auto purged = factors_->purgeUnverified();
  ASSERT_TRUE(purged);
  EXPECT_EQ(*purged, 1);
  EXPECT_FALSE(factors_->fetchFactor(account_, service_, kIdentity, old.factor.sid));
  EXPECT_TRUE(factors_->fetchFactor(account_, service_, kIdentity, kept.factor.sid));
  EXPECT_TRUE(factors_->fetchFactor(account_, service_, kIdentity, young.factor.sid));
}

// ---- TOTP challenges

TEST_F(FactorServiceTest, ChallengeNeedsAVerifiedFactor) {
  auto f = totpFactor();
  ChallengeParams p;
  p.factor_sid = f.factor.sid;
  EXPECT_EQ(factors_->createChallenge(account_, service_, kIdentity, p).error().kind,
            ErrorKind::kFactorNotVerified);
  p.factor_sid.reset();
  EXPECT_EQ(factors_->createChallenge(account_, service_, kIdentity, p).error().kind,
            ErrorKind::kMissingArgument);
  p.factor_sid = "YF" + std::string(32, '0');
  EXPECT_EQ(factors_->createChallenge(account_, service_, kIdentity, p).error().kind,
            ErrorKind::kNotFound);
}

TEST_F(FactorServiceTest, TotpChallengeWithACodeIsApprovedAndACodeIsNeverAcceptedTwice) {
  hookAll();
  auto f = totpFactor();
  verifiedTotp(f);  // accepted the current step
  ChallengeParams p;
  p.factor_sid = f.factor.sid;
  // The code that verified the factor: a replay.
  p.auth_payload = codeAt(f, clock_.now());
  auto replay = factors_->createChallenge(account_, service_, kIdentity, p);
  ASSERT_TRUE(replay) << replay.error().message;
  EXPECT_EQ(replay->challenge.status, "pending");
  EXPECT_EQ(replay->challenge.failed_attempts, 1);
  // The next step's code is within the skew, and newer.
  p.auth_payload = codeAt(f, clock_.now() + 30);
  clock_.advance(3);
  auto approved = factors_->createChallenge(account_, service_, kIdentity, p);
  ASSERT_TRUE(approved) << approved.error().message;
  const Challenge& c = approved->challenge;
  EXPECT_EQ(c.status, "approved");
  EXPECT_EQ(c.date_responded, clock_.now());
  EXPECT_EQ(c.expiration_date, clock_.now() + 300);
  EXPECT_EQ(c.factor_type, "totp");
  EXPECT_EQ(c.entity_sid, f.factor.entity_sid);
  // ... and once only, on this challenge or another.
  ChallengeUpdateParams again;
  again.auth_payload = p.auth_payload;
  auto other =
      factors_->updateChallenge(account_, service_, kIdentity, replay->challenge.sid, again);
  ASSERT_TRUE(other);
  EXPECT_EQ(other->challenge.status, "pending");
  EXPECT_EQ(other->challenge.failed_attempts, 2);
  // An answered challenge is not answered again.
  auto same = factors_->updateChallenge(account_, service_, kIdentity, c.sid, again);
  ASSERT_TRUE(same);
  EXPECT_EQ(same->challenge.status, "approved");
  json event = json::parse(deliveries().front().body);
  EXPECT_EQ(event["type"], "challenge.approved");
  EXPECT_EQ(event["challenge_sid"], c.sid);
  EXPECT_EQ(event["factor_sid"], f.factor.sid);
  EXPECT_EQ(json::parse(event["challenge_details"].get<std::string>())["fields"], json::array());
}

TEST_F(FactorServiceTest, FifthWrongCodeEndsATotpChallenge) {
  auto f = totpFactor();
  verifiedTotp(f);
  ChallengeParams p;
  p.factor_sid = f.factor.sid;
  auto c = factors_->createChallenge(account_, service_, kIdentity, p);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->challenge.status, "pending");
  ChallengeUpdateParams u;
  u.auth_payload = wrongCode(f);
  for (int i = 1; i <= 4; ++i) {
    auto r = factors_->updateChallenge(account_, service_, kIdentity, c->challenge.sid, u);
    ASSERT_TRUE(r) << i;
    EXPECT_EQ(r->challenge.failed_attempts, i);
  }
  EXPECT_EQ(
      factors_->updateChallenge(account_, service_, kIdentity, c->challenge.sid, u).error().kind,
      ErrorKind::kChallengeMaxAttempts);
  u.auth_payload = codeAt(f, clock_.now() + 30);
  EXPECT_EQ(
      factors_->updateChallenge(account_, service_, kIdentity, c->challenge.sid, u).error().kind,
      ErrorKind::kChallengeMaxAttempts);
}

TEST_F(FactorServiceTest, ChallengeParametersAreValidated) {
  auto f = totpFactor();
  verifiedTotp(f);
  ChallengeParams p;
  p.factor_sid = f.factor.sid;
  auto param = [&](ChallengeParams q) {
    auto r = factors_->createChallenge(account_, service_, kIdentity, q);
    return r ? std::string("ok") : r.error().param;
  };
  auto q = p;
  q.expiration_date = formatIso8601(clock_.now() + 3601);
  EXPECT_EQ(param(q), "ExpirationDate");
  q.expiration_date = formatIso8601(clock_.now() - 1);
  EXPECT_EQ(param(q), "ExpirationDate");
  q.expiration_date = "tomorrow";
  EXPECT_EQ(param(q), "ExpirationDate");
  q.expiration_date = formatIso8601(clock_.now() + 3600);
  EXPECT_EQ(param(q), "ok");
  q = p;
  q.details_fields = {R"({"label":"IP"})"};
  EXPECT_EQ(param(q), "Details.Fields");
  q.details_fields.assign(21, R"({"label":"a","value":"b"})");
  EXPECT_EQ(param(q), "Details.Fields");
  q.details_fields.assign(20, R"({"label":"a","value":"b"})");
  EXPECT_EQ(param(q), "ok");
  q = p;
  q.hidden_details = "[1]";
  EXPECT_EQ(param(q), "HiddenDetails");
  q.hidden_details = R"({"ip":"10.0.0.1"})";
  EXPECT_EQ(param(q), "ok");
  q.details_message = std::string(257, 'm');
  EXPECT_EQ(param(q), "Details.Message");
  q = p;
  q.auth_payload = "12";
  EXPECT_EQ(param(q), "AuthPayload");
}

TEST_F(FactorServiceTest, PendingChallengesExpire) {
  auto f = totpFactor();
  verifiedTotp(f);
  ChallengeParams p;
  p.factor_sid = f.factor.sid;
  auto a = factors_->createChallenge(account_, service_, kIdentity, p);
  p.expiration_date = formatIso8601(clock_.now() + 600);
  auto b = factors_->createChallenge(account_, service_, kIdentity, p);
  ASSERT_TRUE(a && b);
  clock_.advance(300);
  auto list = [&](std::optional<std::string> status) {
    ChallengeListFilter filter;
    filter.status = status;
    auto l = factors_->listChallenges(account_, service_, kIdentity, filter, {}, 50);
    EXPECT_TRUE(l) << l.error().message;
    std::vector<std::string> out;
    for (const auto& c : l->page.items) out.push_back(c.sid + ":" + c.status);
    return out;
  };
  // Read as expired before any write says so.
  EXPECT_EQ(list("expired"), std::vector<std::string>{a->challenge.sid + ":expired"});
  EXPECT_EQ(list("pending"), std::vector<std::string>{b->challenge.sid + ":pending"});
  auto fetched = factors_->fetchChallenge(account_, service_, kIdentity, a->challenge.sid);
  ASSERT_TRUE(fetched);
  EXPECT_EQ(fetched->challenge.status, "expired");
  EXPECT_EQ((*store_->getChallenge(service_, kIdentity, a->challenge.sid))->status, "expired");
  // Answering an expired challenge answers it expired.
  ChallengeUpdateParams u;
  u.auth_payload = codeAt(f, clock_.now());
  auto late = factors_->updateChallenge(account_, service_, kIdentity, a->challenge.sid, u);
  ASSERT_TRUE(late);
  EXPECT_EQ(late->challenge.status, "expired");
  EXPECT_EQ(late->challenge.date_responded, 0);
  ChallengeListFilter bad;
  bad.status = "done";
  EXPECT_EQ(factors_->listChallenges(account_, service_, kIdentity, bad, {}, 50).error().param,
            "Status");
}

TEST_F(FactorServiceTest, ChallengeListPagesThroughFilteredOutRecords) {
  auto f = totpFactor();
  verifiedTotp(f);
  ChallengeParams p;
  p.factor_sid = f.factor.sid;
  std::vector<std::string> sids;
  for (int i = 0; i < 5; ++i)
    sids.push_back(factors_->createChallenge(account_, service_, kIdentity, p)->challenge.sid);
  clock_.advance(200);
  p.expiration_date = formatIso8601(clock_.now() + 3000);
  auto live = factors_->createChallenge(account_, service_, kIdentity, p);
  clock_.advance(200);  // the first five have expired
  ChallengeListFilter filter;
  filter.status = "pending";
  auto page = factors_->listChallenges(account_, service_, kIdentity, filter, {}, 2);
  ASSERT_TRUE(page);
  ASSERT_EQ(page->page.items.size(), 1u);
  EXPECT_EQ(page->page.items[0].sid, live->challenge.sid);
  filter.status = "expired";
  filter.order = "desc";
  page = factors_->listChallenges(account_, service_, kIdentity, filter, {}, 2);
  ASSERT_TRUE(page);
  ASSERT_EQ(page->page.items.size(), 1u);  // the live one was read and dropped
  EXPECT_EQ(page->page.items[0].sid, sids[4]);
  EXPECT_TRUE(page->page.has_next);
}

// ---- push

class FactorPushTest : public FactorServiceTest {
 protected:
  void SetUp() override {
    FactorServiceTest::SetUp();
    key_ = testing::newDeviceKey();
  }
  NewFactorParams pushParams() {
    NewFactorParams p;
    p.friendly_name = "John's iPhone";
    p.factor_type = "push";
    p.binding_alg = "ES256";
    p.binding_public_key = testing::deviceSpki(key_);
    p.app_id = "com.example.app";
    p.notification_platform = "fcm";
    p.notification_token = std::string(40, 't');
    p.sdk_version = "1.0.0";
    p.metadata = R"({"os":"Android"})";
    return p;
  }
  Factor verifiedPush() {
    auto f = factors_->createFactor(account_, service_, kIdentity, pushParams());
    EXPECT_TRUE(f) << f.error().message;
    FactorUpdateParams u;
    u.auth_payload = testing::deviceSignDer(key_, f->factor.sid);
    auto r = factors_->updateFactor(account_, service_, kIdentity, f->factor.sid, u);
    EXPECT_TRUE(r) << r.error().message;
    return *r;
  }
  ChallengeView pushChallenge(const Factor& f) {
    ChallengeParams p;
    p.factor_sid = f.sid;
    p.details_message = "Log in to Owl Bank?";
    p.details_fields = {R"({"label":"IP","value":"10.0.0.1"})"};
    p.hidden_details = R"({"ip":"10.0.0.1"})";
    auto c = factors_->createChallenge(account_, service_, kIdentity, p);
    EXPECT_TRUE(c) << c.error().message;
    return *c;
  }
  // What a device signs: the fetched values of the signature fields, and its answer.
  std::string answer(const ChallengeView& v, const std::string& status) {
    auto payload = challengeSignedValues(v.challenge, v.include_date);
    payload["status"] = status;
    return testing::deviceJws(key_, payload.dump());
  }
  std::string key_;
};

TEST_F(FactorPushTest, PushFactorParametersAreValidated) {
  auto param = [&](NewFactorParams p) {
    auto r = factors_->createFactor(account_, service_, kIdentity, p);
    return r ? std::string("ok") : r.error().param;
  };
  auto p = pushParams();
  p.binding_public_key = "bm90IGEga2V5";
  EXPECT_EQ(param(p), "Binding.PublicKey");
  p = pushParams();
  p.binding_alg = "RS256";
  EXPECT_EQ(param(p), "Binding.Alg");
  p = pushParams();
  p.app_id.reset();
  EXPECT_EQ(param(p), "Config.AppId");
  p = pushParams();
  p.notification_platform = "sms";
  EXPECT_EQ(param(p), "Config.NotificationPlatform");
  p = pushParams();
  p.notification_token = "short";
  EXPECT_EQ(param(p), "Config.NotificationToken");
  p.notification_platform = "none";
  p.notification_token.reset();
  EXPECT_EQ(param(p), "ok");
  EXPECT_EQ(param(pushParams()), "ok");
}

TEST_F(FactorPushTest, PushFactorIsVerifiedBySigningItsSid) {
  auto f = factors_->createFactor(account_, service_, kIdentity, pushParams());
  ASSERT_TRUE(f);
  EXPECT_TRUE(f->secret.empty());
  FactorUpdateParams u;
  u.auth_payload = testing::deviceSignDer(key_, "something else");
  auto r = factors_->updateFactor(account_, service_, kIdentity, f->factor.sid, u);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, "unverified");
  EXPECT_EQ(r->failed_attempts, 1);
  u.auth_payload = testing::deviceSignDer(key_, f->factor.sid);
  r = factors_->updateFactor(account_, service_, kIdentity, f->factor.sid, u);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, "verified");
}

TEST_F(FactorPushTest, PushChallengeQueuesItsNotificationAndIsAnsweredWithAJws) {
  hookAll();
  auto f = verifiedPush();
  auto v = pushChallenge(f);
  EXPECT_EQ(v.challenge.status, "pending");
  EXPECT_FALSE(v.include_date);
  auto queued = deliveries();
  ASSERT_FALSE(queued.empty());
  EXPECT_EQ(queued.front().kind, "push");
  json push = json::parse(queued.front().body);
  EXPECT_EQ(push["platform"], "fcm");
  EXPECT_EQ(push["token"], std::string(40, 't'));
  EXPECT_EQ(push["challenge_sid"], v.challenge.sid);
  EXPECT_EQ(push["factor_sid"], f.sid);
  EXPECT_EQ(push["service_sid"], service_);
  EXPECT_EQ(push["entity_identity"], kIdentity);
  EXPECT_EQ(push["message"], "Log in to Owl Bank?");
  EXPECT_EQ(push["ttl"], 300);
  EXPECT_EQ(push["priority"], "high");

  // Another key's signature, or a payload that is not what was shown, fails.
  ChallengeUpdateParams u;
  auto other = testing::newDeviceKey();
  auto payload = challengeSignedValues(v.challenge, false);
  payload["status"] = "approved";
  u.auth_payload = testing::deviceJws(other, payload.dump());
  EXPECT_EQ(
      factors_->updateChallenge(account_, service_, kIdentity, v.challenge.sid, u).error().kind,
      ErrorKind::kChallengeVerifyFailed);
  payload["details"]["message"] = "Something else";
  u.auth_payload = testing::deviceJws(key_, payload.dump());
  EXPECT_EQ(
      factors_->updateChallenge(account_, service_, kIdentity, v.challenge.sid, u).error().kind,
      ErrorKind::kChallengeVerifyFailed);
  u.auth_payload = answer(v, "maybe");
  EXPECT_EQ(
      factors_->updateChallenge(account_, service_, kIdentity, v.challenge.sid, u).error().kind,
      ErrorKind::kChallengeVerifyFailed);

  clock_.advance(5);
  u.auth_payload = answer(v, "approved");
  u.metadata = R"({"os":"Android"})";
  auto r = factors_->updateChallenge(account_, service_, kIdentity, v.challenge.sid, u);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->challenge.status, "approved");
  EXPECT_EQ(r->challenge.date_responded, clock_.now());
  EXPECT_EQ(r->challenge.metadata, R"({"os":"Android"})");
  json event = json::parse(deliveries().front().body);
  EXPECT_EQ(event["type"], "challenge.approved");
  EXPECT_EQ(event["factor_type"], "push");
  EXPECT_EQ(json::parse(event["challenge_details"].get<std::string>())["message"],
            "Log in to Owl Bank?");

  auto denied = pushChallenge(f);
  u.auth_payload = answer(denied, "denied");
  r = factors_->updateChallenge(account_, service_, kIdentity, denied.challenge.sid, u);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->challenge.status, "denied");
  EXPECT_EQ(json::parse(deliveries().front().body)["type"], "challenge.denied");
}

TEST_F(FactorPushTest, IncludeDateIsSignedToo) {
  ASSERT_TRUE(services_->update(account_, service_, [](ServiceSettings& s) -> Status {
    s.push_include_date = true;
    return {};
  }));
  auto f = verifiedPush();
  auto v = pushChallenge(f);
  EXPECT_TRUE(v.include_date);
  EXPECT_EQ(challengeDetailsJson(v.challenge, true)["date"], formatIso8601(clock_.now()));
  ChallengeUpdateParams u;
  u.auth_payload = answer(v, "approved");
  auto r = factors_->updateChallenge(account_, service_, kIdentity, v.challenge.sid, u);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->challenge.status, "approved");
}

TEST_F(FactorPushTest, PushChallengeNeedsAMessageAndTakesNoCode) {
  auto f = verifiedPush();
  ChallengeParams p;
  p.factor_sid = f.sid;
  EXPECT_EQ(factors_->createChallenge(account_, service_, kIdentity, p).error().param,
            "Details.Message");
  p.details_message = "hi";
  p.auth_payload = "123456";
  EXPECT_EQ(factors_->createChallenge(account_, service_, kIdentity, p).error().param,
            "AuthPayload");
}

TEST_F(FactorPushTest, NotificationsResendThePushOfAPendingChallenge) {
  auto f = verifiedPush();
  auto v = pushChallenge(f);
  const auto before = deliveries().size();
  EXPECT_EQ(factors_->createNotification(account_, service_, kIdentity, v.challenge.sid, 301)
                .error()
                .param,
            "Ttl");
  auto n = factors_->createNotification(account_, service_, kIdentity, v.challenge.sid, 150);
  ASSERT_TRUE(n) << n.error().message;
  EXPECT_TRUE(isSid(n->sid, "NT"));
  EXPECT_EQ(n->ttl, 150);
  EXPECT_EQ(n->priority, "high");
  EXPECT_EQ(n->challenge_sid, v.challenge.sid);
  EXPECT_EQ(n->entity_sid, f.entity_sid);
  auto all = deliveries();
  ASSERT_EQ(all.size(), before + 1);
  EXPECT_EQ(json::parse(all.front().body)["ttl"], 150);
  EXPECT_EQ(factors_->createNotification(account_, service_, kIdentity, v.challenge.sid, {})->ttl,
            300);
  clock_.advance(301);
  EXPECT_EQ(
      factors_->createNotification(account_, service_, kIdentity, v.challenge.sid, {}).error().kind,
      ErrorKind::kInvalidArgument);
  EXPECT_EQ(
      factors_->createNotification(account_, service_, kIdentity, "YC" + std::string(32, '0'), {})
          .error()
          .kind,
      ErrorKind::kNotFound);
}

TEST_F(FactorPushTest, NoPushIsQueuedForPlatformNone) {
  auto p = pushParams();
  p.notification_platform = "none";
  auto f = factors_->createFactor(account_, service_, kIdentity, p);
  ASSERT_TRUE(f);
  FactorUpdateParams u;
  u.auth_payload = testing::deviceSignDer(key_, f->factor.sid);
  ASSERT_TRUE(factors_->updateFactor(account_, service_, kIdentity, f->factor.sid, u));
  pushChallenge(f->factor);
  for (const auto& d : deliveries()) EXPECT_NE(d.kind, "push");
}

// ---- access tokens

TEST_F(FactorServiceTest, AccessTokensAuthenticateADeviceForOneIdentityUntilTheyExpire) {
  AccessTokenParams p;
  p.identity = kIdentity;
  p.factor_type = "push";
  p.factor_friendly_name = "John's iPhone";
  p.ttl = 120;
  auto t = factors_->createAccessToken(account_, service_, p);
  ASSERT_TRUE(t) << t.error().message;
  EXPECT_TRUE(isSid(t->sid, "YK"));
  EXPECT_EQ(t->ttl, 120);
  EXPECT_EQ(factors_->fetchAccessToken(account_, service_, t->sid)->token, t->token);
  auto claims = factors_->authenticateDevice(t->token);
  ASSERT_TRUE(claims) << claims.error().message;
  EXPECT_EQ(claims->account_sid, account_);
  EXPECT_EQ(claims->service_sid, service_);
  EXPECT_EQ(claims->identity, kIdentity);
  EXPECT_EQ(claims->factor_type, "push");
  EXPECT_EQ(claims->factor_friendly_name, "John's iPhone");
  EXPECT_EQ(factors_->authenticateDevice(t->token + "x").error().kind, ErrorKind::kUnauthenticated);
  clock_.advance(121);
  EXPECT_EQ(factors_->authenticateDevice(t->token).error().kind, ErrorKind::kUnauthenticated);

  auto param = [&](AccessTokenParams q) {
    auto r = factors_->createAccessToken(account_, service_, q);
    return r ? std::string("ok") : r.error().param;
  };
  auto q = p;
  q.ttl = 59;
  EXPECT_EQ(param(q), "Ttl");
  q.ttl.reset();
  EXPECT_EQ(factors_->createAccessToken(account_, service_, q)->ttl, 60);
  q.factor_type = "totp";
  EXPECT_EQ(param(q), "FactorType");
  q = p;
  q.identity.reset();
  EXPECT_EQ(param(q), "Identity");
  EXPECT_EQ(
      factors_->fetchAccessToken(account_, service_, "YK" + std::string(32, '0')).error().kind,
      ErrorKind::kNotFound);
}

// ---- webhooks

TEST_F(FactorServiceTest, WebhooksAreValidatedAndUpdated) {
  WebhookParams p;
  p.friendly_name = "hook";
  p.event_types =
      std::vector<std::string>{"factor.verified", "challenge.approved,challenge.denied"};
  p.webhook_url = "https://owlbank.example/hook";
  auto w = factors_->createWebhook(account_, service_, p);
  ASSERT_TRUE(w) << w.error().message;
  EXPECT_TRUE(isSid(w->sid, "YW"));
  EXPECT_EQ(w->event_types, (std::vector<std::string>{"factor.verified", "challenge.approved",
                                                      "challenge.denied"}));
  EXPECT_EQ(w->status, "enabled");
  EXPECT_EQ(w->version, "v2");
  EXPECT_EQ(w->webhook_method, "POST");

  auto param = [&](WebhookParams q) {
    auto r = factors_->createWebhook(account_, service_, q);
    return r ? std::string("ok") : r.error().param;
  };
  auto q = p;
  q.event_types = std::vector<std::string>{"factor.exploded"};
  EXPECT_EQ(param(q), "EventTypes");
  q = p;
  q.webhook_url = "ftp://owlbank.example";
  EXPECT_EQ(param(q), "WebhookUrl");
  q.webhook_url = "https://";
  EXPECT_EQ(param(q), "WebhookUrl");
  q = p;
  q.status = "paused";
  EXPECT_EQ(param(q), "Status");
  q = p;
  q.version = "v3";
  EXPECT_EQ(param(q), "Version");
  q = p;
  q.friendly_name.reset();
  EXPECT_EQ(param(q), "FriendlyName");

  clock_.advance(7);
  WebhookParams u;
  u.status = "disabled";
  u.event_types = std::vector<std::string>{"*"};
  auto updated = factors_->updateWebhook(account_, service_, w->sid, u);
  ASSERT_TRUE(updated) << updated.error().message;
  EXPECT_EQ(updated->status, "disabled");
  EXPECT_EQ(updated->event_types, std::vector<std::string>{"*"});
  EXPECT_EQ(updated->friendly_name, "hook");
  EXPECT_EQ(updated->date_updated, clock_.now());
  u.version = "v0";
  EXPECT_EQ(factors_->updateWebhook(account_, service_, w->sid, u).error().param, "Version");
  EXPECT_EQ(factors_->listWebhooks(account_, service_, {}, 50)->items.size(), 1u);
  ASSERT_TRUE(factors_->deleteWebhook(account_, service_, w->sid));
  EXPECT_EQ(factors_->fetchWebhook(account_, service_, w->sid).error().kind, ErrorKind::kNotFound);
}

TEST_F(FactorServiceTest, DisabledWebhooksHearNothing) {
  WebhookParams p;
  p.friendly_name = "off";
  p.event_types = std::vector<std::string>{"*"};
  p.webhook_url = "https://owlbank.example/hook";
  p.status = "disabled";
  ASSERT_TRUE(factors_->createWebhook(account_, service_, p));
  totpFactor();
  EXPECT_TRUE(deliveries().empty());
}

}  // namespace
}  // namespace verifyd
