#include "verifyd/core/verifier.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "fakes.h"
#include "verifyd/core/code.h"
#include "verifyd/core/protection.h"
#include "verifyd/core/rate_limits.h"
#include "verifyd/core/service_registry.h"
#include "verifyd/crypto/openssl.h"
#include "verifyd/phone/libphonenumber_numbers.h"
#include "verifyd/storage/sqlite/sqlite_store.h"

namespace verifyd {
namespace {

const std::string kAccount = "AC" + std::string(32, 'a');
const std::string kTo = "+15017122661";

class VerifierTest : public ::testing::Test {
 protected:
  testing::TempDir dir_;  // first: outlives the store
  void SetUp() override {
    store_ = std::move(*SqliteStore::open(dir_.file("db"), /*durable=*/false));
    registry_ = std::make_unique<ServiceRegistry>(*store_, clock_, random_);
    makeVerifier(VerifierOptions{});
    ServiceSettings s;
    s.friendly_name = "Acme";
    service_ = registry_->create(kAccount, s)->sid;
  }
  void TearDown() override {
    verifier_.reset();
    registry_.reset();
    store_.reset();
  }
  void makeVerifier(VerifierOptions options) {
    verifier_ = std::make_unique<Verifier>(*store_, keyring_, phones_, clock_, random_, options,
                                           [this](const OutboxMessage& m) { sent_.push_back(m); });
  }
  std::string lastCode() const {
    const std::string& body = sent_.back().body;
    return body.substr(body.rfind(' ') + 1);
  }
  Result<Verification> start(const std::string& to = kTo, const std::string& channel = "sms") {
    return verifier_->start(kAccount, service_, StartParams{to, channel, {}, {}, {}, {}, {}});
  }
  Result<Verification> check(const std::string& code, const std::string& to = kTo) {
    CheckParams p;
    p.to = to;
    p.code = code;
    return verifier_->check(kAccount, service_, p);
  }
  std::string wrongCode() const { return lastCode() == "000000" ? "111111" : "000000"; }

  testing::FakeClock clock_;
  testing::FakeRandom random_;
  OpenSslKeyring keyring_{std::string(32, 's')};
  LibPhoneNumbers phones_;
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<ServiceRegistry> registry_;
  std::unique_ptr<Verifier> verifier_;
  std::string service_;
  std::vector<OutboxMessage> sent_;
};

TEST_F(VerifierTest, StartsPendingWithACodeOfTheServiceLength) {
  auto v = start();
  ASSERT_TRUE(v) << v.error().message;
  EXPECT_EQ(v->status, "pending");
  EXPECT_EQ(v->send_attempts.size(), 1u);
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_EQ(lastCode().size(), 6u);
  EXPECT_EQ(sent_.back().body, "Your Acme verification code is: " + lastCode());
  // Nothing stored reveals the code.
  auto stored = store_->getVerification(VerificationKey{service_, v->sid, {}});
  ASSERT_TRUE(stored && *stored);
  EXPECT_EQ((*stored)->code_hash.find(lastCode()), std::string::npos);
  EXPECT_EQ((*stored)->code_seed.find(lastCode()), std::string::npos);
}

TEST_F(VerifierTest, WrongCodeStaysPendingRightCodeApproves) {
  ASSERT_TRUE(start());
  auto wrong = check(wrongCode());
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, "pending");
  auto right = check(lastCode());
  ASSERT_TRUE(right);
  EXPECT_EQ(right->status, "approved");
  auto again = check(lastCode());
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().kind, ErrorKind::kNotFound);
}

TEST_F(VerifierTest, ExpiresAfterTheTtlWithoutSleeping) {
  ASSERT_TRUE(start());
  std::string code = lastCode();
  clock_.advance(599);
  auto sid = verifier_->fetch(kAccount, service_, kTo);
  ASSERT_TRUE(sid);
  clock_.advance(1);
  auto late = check(code);
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().kind, ErrorKind::kNotFound);
  EXPECT_FALSE(verifier_->fetch(kAccount, service_, sid->sid));
  // A new start after expiry is a new verification with its own code.
  auto fresh = start();
  ASSERT_TRUE(fresh);
  EXPECT_NE(fresh->sid, sid->sid);
}

TEST_F(VerifierTest, CodeTtlIsASetting) {
  VerifierOptions o;
  o.code_ttl_seconds = 60;
  makeVerifier(o);
  ASSERT_TRUE(start());
  std::string code = lastCode();
  clock_.advance(60);
  EXPECT_FALSE(check(code));
}

TEST_F(VerifierTest, ResendKeepsSidAndCodeAndSixthSendIsRefused) {
  auto first = start();
  ASSERT_TRUE(first);
  std::string code = lastCode();
  for (int i = 2; i <= 5; ++i) {
    clock_.advance(10);
    auto again = start(kTo, i == 3 ? "call" : "sms");
    ASSERT_TRUE(again);
    EXPECT_EQ(again->sid, first->sid);
    EXPECT_EQ(again->send_attempts.size(), static_cast<std::size_t>(i));
    EXPECT_EQ(lastCode(), code);
  }
  auto sixth = start();
  ASSERT_FALSE(sixth);
  EXPECT_EQ(sixth.error().kind, ErrorKind::kMaxSendAttempts);
  EXPECT_EQ(sent_.size(), 5u);
}

TEST_F(VerifierTest, SendsToOneDestinationAreCountedAcrossVerifications) {
  auto first = start();
  ASSERT_TRUE(first);
  ASSERT_TRUE(start());  // a resend: 2 sends
  ASSERT_TRUE(verifier_->update(kAccount, service_, first->sid, "canceled"));
  auto second = start();  // a new verification: send 3
  ASSERT_TRUE(second);
  EXPECT_NE(second->sid, first->sid);
  clock_.advance(30);
  ASSERT_TRUE(start());  // sends 4 and 5, resends of the second
  ASSERT_TRUE(start());
  ASSERT_TRUE(verifier_->update(kAccount, service_, second->sid, "canceled"));
  // A new verification after a cancel does not reset the count within the window.
  auto sixth = start();
  ASSERT_FALSE(sixth);
  EXPECT_EQ(sixth.error().kind, ErrorKind::kMaxSendAttempts);
  EXPECT_EQ(sixth.error().retry_after, 570);
  EXPECT_EQ(sent_.size(), 5u);
  // Another number is not affected; the window frees this one.
  EXPECT_TRUE(start("+15017122662"));
  clock_.advance(570);
  EXPECT_TRUE(start());
}

TEST_F(VerifierTest, FifthWrongCheckEndsItAndLaterChecksAreRefused) {
  ASSERT_TRUE(start());
  std::string code = lastCode();
  for (int i = 1; i <= 4; ++i) EXPECT_EQ(check(wrongCode())->status, "pending");
  auto fifth = check(wrongCode());
  ASSERT_TRUE(fifth);
  EXPECT_EQ(fifth->status, "max_attempts_reached");
  auto sixth = check(code);
  ASSERT_FALSE(sixth);
  EXPECT_EQ(sixth.error().kind, ErrorKind::kMaxCheckAttempts);
  auto fetched = verifier_->fetch(kAccount, service_, kTo);
  ASSERT_FALSE(fetched);
  EXPECT_EQ(fetched.error().kind, ErrorKind::kNotFound);
  clock_.advance(600);
  EXPECT_EQ(check(code).error().kind, ErrorKind::kNotFound);
}

TEST_F(VerifierTest, ConcurrentWrongChecksNeverExceedTheLimit) {
  ASSERT_TRUE(start());
  std::string wrong = wrongCode();
  std::atomic<int> accepted{0}, refused{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 20; ++i)
    threads.emplace_back([&] {
      auto r = check(wrong);
      if (r)
        ++accepted;
      else if (r.error().kind == ErrorKind::kMaxCheckAttempts)
        ++refused;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(accepted.load(), 5);
  EXPECT_EQ(refused.load(), 15);
}

TEST_F(VerifierTest, CustomCodesNeedTheServiceSetting) {
  StartParams p{kTo, "sms", std::string("867530"), {}, {}, {}, {}};
  auto refused = verifier_->start(kAccount, service_, p);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().kind, ErrorKind::kFeatureNotSupported);
  ASSERT_TRUE(registry_->update(kAccount, service_, [](ServiceSettings& s) -> Status {
    s.custom_code_enabled = true;
    return {};
  }));
  auto v = verifier_->start(kAccount, service_, p);
  ASSERT_TRUE(v);
  EXPECT_EQ(lastCode(), "867530");
  EXPECT_EQ(check("867530")->status, "approved");
}

TEST_F(VerifierTest, CancelAndApproveByUpdate) {
  auto v = start();
  ASSERT_TRUE(v);
  auto canceled = verifier_->update(kAccount, service_, v->sid, "canceled");
  ASSERT_TRUE(canceled);
  EXPECT_EQ(canceled->status, "canceled");
  EXPECT_EQ(check(lastCode()).error().kind, ErrorKind::kNotFound);
  auto w = start();
  ASSERT_TRUE(w);
  EXPECT_NE(w->sid, v->sid);
  EXPECT_EQ(verifier_->update(kAccount, service_, w->sid, "approved")->status, "approved");
  EXPECT_EQ(verifier_->update(kAccount, service_, w->sid, "pending").error().kind,
            ErrorKind::kInvalidArgument);
}

TEST_F(VerifierTest, RejectsBadChannelsAndNumbers) {
  auto fax = start(kTo, "fax");
  ASSERT_FALSE(fax);
  EXPECT_EQ(fax.error().param, "Channel");
  EXPECT_NE(fax.error().message.find("sms, call, email or whatsapp"), std::string::npos);
  for (std::string to : {"+1", "abc", "15017122661", "+1501712266x", "+999999999999999999"}) {
    auto bad = start(to);
    ASSERT_FALSE(bad) << to;
    EXPECT_EQ(bad.error().param, "To") << to;
  }
  EXPECT_EQ(start(kTo, "email").error().param, "To");
  EXPECT_TRUE(start("user@example.com", "email"));
  EXPECT_EQ(sent_.size(), 1u);
}

TEST_F(VerifierTest, OtherAccountsSeeNothing) {
  auto v = start();
  ASSERT_TRUE(v);
  const std::string other = "AC" + std::string(32, 'b');
  EXPECT_EQ(verifier_->fetch(other, service_, v->sid).error().kind, ErrorKind::kNotFound);
  CheckParams p;
  p.to = kTo;
  p.code = lastCode();
  EXPECT_EQ(verifier_->check(other, service_, p).error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(
      verifier_->start(other, service_, StartParams{kTo, "sms", {}, {}, {}, {}, {}}).error().kind,
      ErrorKind::kNotFound);
}

TEST_F(VerifierTest, RateLimitBucketsHoldUnderConcurrentStarts) {
  RateLimitRegistry limits(*store_, *store_, clock_, random_);
  auto rk = limits.create(kAccount, service_, "end_user_ip", std::nullopt);
  ASSERT_TRUE(rk);
  ASSERT_TRUE(limits.createBucket(kAccount, service_, rk->sid, 4, 60));
  std::atomic<int> started{0}, limited{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 20; ++i)
    threads.emplace_back([&, i] {
      StartParams p{"+1501712" + std::to_string(2700 + i), "sms", {}, {}, {}, {}, {}};
      p.rate_limits = {{"end_user_ip", "10.0.0.1"}};
      auto r = verifier_->start(kAccount, service_, p);
      if (r)
        ++started;
      else if (r.error().kind == ErrorKind::kRateLimited)
        ++limited;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(started.load(), 4);
  EXPECT_EQ(limited.load(), 16);
  EXPECT_EQ(sent_.size(), 4u);
}

TEST_F(VerifierTest, ServerWideGeoBlocksYieldToAnAccountsOwnRule) {
  VerifierOptions o;
  o.geo_blocked = {"sms:GB"};
  makeVerifier(o);
  auto blocked = start("+447400123456");
  ASSERT_FALSE(blocked);
  EXPECT_EQ(blocked.error().kind, ErrorKind::kGeoBlocked);
  EXPECT_TRUE(sent_.empty());
  Protection protection(*store_, phones_, clock_, random_);
  ASSERT_TRUE(protection.setGeoPermission(kAccount, "sms", "GB", "allow"));
  EXPECT_TRUE(start("+447400123456"));
}

TEST_F(VerifierTest, FraudGuardBlocksAPumpedPrefixButNotConvertingTraffic) {
  Protection protection(*store_, phones_, clock_, random_);
  auto number = [](const char* prefix, int i) {
    std::string n = std::to_string(i);
    return std::string(prefix) + std::string(3 - n.size(), '0') + n;
  };
  // Real users in two prefixes: every code is checked.
  auto converted = [&](const std::string& to) {
    auto v = start(to);
    if (!v) return false;
    auto c = check(lastCode(), to);
    return c && c->status == "approved";
  };
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(converted(number("+15017122", i))) << i;
    ASSERT_TRUE(converted(number("+16502530", i))) << i;
  }
  // The attack: consecutive numbers in one prefix, no code ever checked.
  int sent_before = static_cast<int>(sent_.size());
  int accepted = 0, refused = 0;
  for (int i = 0; i < 200; ++i) {
    auto r = start(number("+14159929", i));
    if (r) {
      ++accepted;
    } else {
      EXPECT_EQ(r.error().kind, ErrorKind::kFraudBlocked) << i;
      ++refused;
    }
    if (i % 10 == 0) clock_.advance(1);
  }
  EXPECT_LE(accepted, 15);  // blocked after a bounded number of messages
  EXPECT_EQ(accepted + refused, 200);
  EXPECT_EQ(static_cast<int>(sent_.size()) - sent_before, accepted);
  auto blocks = protection.fraudBlocks(kAccount);
  ASSERT_TRUE(blocks);
  ASSERT_EQ(blocks->size(), 1u);
  EXPECT_EQ((*blocks)[0].prefix, "+14159929");
  // Converting traffic elsewhere goes on; safe-listed numbers and RiskCheck=disable pass.
  EXPECT_TRUE(converted(number("+15017122", 100)));
  ASSERT_TRUE(protection.addSafeNumber(kAccount, number("+14159929", 500)));
  EXPECT_TRUE(start(number("+14159929", 500)));
  StartParams bypass{number("+14159929", 501), "sms", {}, {}, {}, {}, {}};
  bypass.risk_check = false;
  EXPECT_TRUE(verifier_->start(kAccount, service_, bypass));
  EXPECT_TRUE(start(number("+14159929", 502), "call"));  // Fraud Guard watches sms only
  // Lifted by the operator, the prefix is open again; after 12 hours it would lift itself.
  ASSERT_TRUE(protection.liftFraudBlock(kAccount, "+14159929"));
  EXPECT_TRUE(start(number("+14159929", 503)));
  EXPECT_EQ(protection.liftFraudBlock(kAccount, "+14159929").error().kind, ErrorKind::kNotFound);
}

TEST_F(VerifierTest, PendingVerificationsToOneNumberAreCappedAcrossServices) {
  std::vector<std::string> services = {service_};
  for (int i = 0; i < 6; ++i) {
    ServiceSettings s;
    s.friendly_name = "svc" + std::to_string(i);
    services.push_back(registry_->create(kAccount, s)->sid);
  }
  auto startOn = [&](const std::string& svc) {
    return verifier_->start(kAccount, svc, StartParams{kTo, "sms", {}, {}, {}, {}, {}});
  };
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(startOn(services[i])) << i;
  auto sixth = startOn(services[5]);
  ASSERT_FALSE(sixth);
  EXPECT_EQ(sixth.error().kind, ErrorKind::kTooManyPending);
  EXPECT_TRUE(startOn(services[0]));  // a resend is not a new verification
  clock_.advance(600);                // all five expire
  EXPECT_TRUE(startOn(services[5]));
}

TEST_F(VerifierTest, AStartFraudGuardRefusesChargesNoRateLimitBucket) {
  RateLimitRegistry limits(*store_, *store_, clock_, random_);
  auto rk = limits.create(kAccount, service_, "end_user_ip", std::nullopt);
  ASSERT_TRUE(rk);
  ASSERT_TRUE(limits.createBucket(kAccount, service_, rk->sid, 1, 60));
  auto startFrom = [&](const std::string& to, const std::string& ip) {
    StartParams p{to, "sms", {}, {}, {}, {}, {}};
    p.rate_limits = {{"end_user_ip", ip}};
    return verifier_->start(kAccount, service_, p);
  };
  // Pump one prefix until Fraud Guard blocks it (each from its own IP).
  bool blocked = false;
  for (int i = 0; i < 20 && !blocked; ++i) {
    auto r = startFrom("+14159929" + std::to_string(100 + i), "10.0.0." + std::to_string(i));
    blocked = !r && r.error().kind == ErrorKind::kFraudBlocked;
  }
  ASSERT_TRUE(blocked);
  // Refused by Fraud Guard from 192.0.2.7: that IP's single slot must still be free.
  auto refused = startFrom("+14159929200", "192.0.2.7");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().kind, ErrorKind::kFraudBlocked);
  EXPECT_TRUE(startFrom("+15017122661", "192.0.2.7"));
  auto second = startFrom("+15017122662", "192.0.2.7");
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().kind, ErrorKind::kRateLimited);
}

TEST_F(VerifierTest, FraudGuardOffLetsEverythingThrough) {
  VerifierOptions o;
  o.fraud_guard = "off";
  makeVerifier(o);
  for (int i = 0; i < 60; ++i) ASSERT_TRUE(start("+14159929" + std::to_string(100 + i))) << i;
}

}  // namespace
}  // namespace verifyd
