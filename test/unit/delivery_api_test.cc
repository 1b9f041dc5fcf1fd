// The delivery resources through the router: Attempts, their summary, Templates, Messaging
// Configurations, delivery receipts, and how starts compose their message (locale, PSD2,
// templates). The dispatcher is not started: attempts stay queued unless a receipt moves them.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "fakes.h"
#include "verifyd/api/router.h"
#include "verifyd/api/twilio/base64.h"
#include "verifyd/api/twilio/form.h"
#include "verifyd/crypto/openssl.h"
#include "verifyd/delivery/delivery_service.h"
#include "verifyd/delivery/templates.h"
#include "verifyd/phone/libphonenumber_numbers.h"
#include "verifyd/storage/sqlite/sqlite_store.h"

namespace verifyd {
namespace {

using nlohmann::json;

class DeliveryApiTest : public ::testing::Test {
 protected:
  testing::TempDir dir_;
  void SetUp() override {
    store_ = std::move(*SqliteStore::open(dir_.file("db"), false));
    DeliveryOptions o;
    o.public_url = "http://verifyd.test";
    // A provider for sms only, never called: the dispatcher is not started.
    ProviderConfig hook;
    hook.name = "hook";
    hook.type = "webhook";
    hook.channels = {"sms"};
    hook.settings["url"] = "http://127.0.0.1:9/never";
    o.providers = {hook};
    delivery_ = std::move(*DeliveryService::create(*store_, keyring_, phones_, random_, o));
    accounts_ = std::make_unique<Accounts>(*store_, keyring_, clock_, random_);
    services_ = std::make_unique<ServiceRegistry>(*store_, clock_, random_);
    verifier_ =
        std::make_unique<Verifier>(*store_, keyring_, phones_, clock_, random_, VerifierOptions{},
                                   MessageSink{}, Executor{}, delivery_.get());
    rate_limits_ = std::make_unique<RateLimitRegistry>(*store_, *store_, clock_, random_);
    protection_ = std::make_unique<Protection>(*store_, phones_, clock_, random_);
    RouterOptions ro;
    ro.public_url = "http://verifyd.test";
    router_ = std::make_unique<Router>(*accounts_, *services_, *rate_limits_, *protection_,
                                       *verifier_, *store_, phones_, clock_, ro, delivery_.get());
    auto cred = *accounts_->createAccount("test");
    auth_ = "Basic " + twilio::base64Encode(cred.sid + ":" + cred.secret);
    auto svc = call("POST", "/v2/Services", "FriendlyName=Acme");
    service_ = body(svc)["sid"];
  }

  ApiResponse call(std::string method, std::string target, std::string body = "",
                   std::string content_type = "application/x-www-form-urlencoded") {
    return router_->handle(ApiRequest{std::move(method), std::move(target), std::move(content_type),
                                      auth_, std::move(body), "192.0.2.1"});
  }
  static json body(const ApiResponse& r) { return json::parse(r.body); }
  json start(const std::string& form) {
    auto r = call("POST", "/v2/Services/" + service_ + "/Verifications", form);
    EXPECT_EQ(r.status, 201) << r.body;
    return body(r);
  }
  json outbox() { return body(call("GET", "/dev/v1/Messages"))["messages"]; }

  testing::FakeClock clock_;
  testing::FakeRandom random_;
  OpenSslKeyring keyring_{std::string(32, 'r')};
  LibPhoneNumbers phones_;
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<DeliveryService> delivery_;
  std::unique_ptr<Accounts> accounts_;
  std::unique_ptr<ServiceRegistry> services_;
  std::unique_ptr<Verifier> verifier_;
  std::unique_ptr<RateLimitRegistry> rate_limits_;
  std::unique_ptr<Protection> protection_;
  std::unique_ptr<Router> router_;
  std::string auth_, service_;
};

TEST_F(DeliveryApiTest, EachStartWritesAnAttemptQueuedForItsProvider) {
  auto v = start("To=%2B33612345678&Channel=sms");
  auto list = body(call("GET", "/v2/Attempts?VerificationSid=" + v["sid"].get<std::string>()));
  ASSERT_EQ(list["attempts"].size(), 1u) << list;
  auto a = list["attempts"][0];
  EXPECT_EQ(a["sid"], v["send_code_attempts"][0]["attempt_sid"]);
  EXPECT_EQ(a["channel"], "sms");
  EXPECT_EQ(a["conversion_status"], "unconverted");
  EXPECT_EQ(a["channel_data"]["message_status"], "queued");
  EXPECT_EQ(a["channel_data"]["country"], "FR");
  EXPECT_EQ(a["channel_data"]["locale"], "fr");
  EXPECT_EQ(a["url"], "http://verifyd.test/v2/Attempts/" + a["sid"].get<std::string>());
  // Without a provider for the channel the dev outbox is the delivery.
  auto e = start("To=ada%40example.test&Channel=email");
  auto ea = body(call("GET", "/v2/Attempts?VerificationSid=" + e["sid"].get<std::string>()));
  EXPECT_EQ(ea["attempts"][0]["channel_data"]["message_status"], "sent");
  EXPECT_EQ(ea["attempts"][0]["channel_data"]["provider"], "dev-outbox");
}

TEST_F(DeliveryApiTest, TheSealedMessageNeverHoldsTheCodeInClear) {
  auto v = start("To=%2B33612345678&Channel=sms");
  auto code = outbox()[0]["code"].get<std::string>();
  auto a = store_->getAttempt(
      body(call("GET", "/v2/Attempts"))["attempts"][0]["account_sid"].get<std::string>(),
      v["send_code_attempts"][0]["attempt_sid"].get<std::string>());
  ASSERT_TRUE(a && *a);
  EXPECT_EQ((*a)->payload_sealed.find(code), std::string::npos);
  auto opened = keyring_.open((*a)->payload_sealed);
  ASSERT_TRUE(opened);
  EXPECT_NE(opened->find(code), std::string::npos);
}

TEST_F(DeliveryApiTest, LocaleComesFromTheNumberUnlessGiven) {
  start("To=%2B79161234567&Channel=sms");
  EXPECT_NE(outbox()[0]["body"].get<std::string>().find("код"), std::string::npos);
  start("To=%2B15017122661&Channel=sms&Locale=ja");
  EXPECT_NE(outbox()[0]["body"].get<std::string>().find("認証コード"), std::string::npos);
  auto bad = call("POST", "/v2/Services/" + service_ + "/Verifications",
                  "To=%2B15017122662&Channel=sms&Locale=xx");
  EXPECT_EQ(bad.status, 404) << bad.body;
  EXPECT_EQ(outbox().size(), 2u);  // nothing stored for the refused start
}

TEST_F(DeliveryApiTest, ResendCarriesTheSameCodeInANewAttempt) {
  auto v1 = start("To=%2B33612345678&Channel=sms");
  auto v2 = start("To=%2B33612345678&Channel=sms");
  EXPECT_EQ(v1["sid"], v2["sid"]);
  auto msgs = outbox();
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[0]["code"], msgs[1]["code"]);
  auto list = body(call("GET", "/v2/Attempts?VerificationSid=" + v1["sid"].get<std::string>()));
  EXPECT_EQ(list["attempts"].size(), 2u);
}

TEST_F(DeliveryApiTest, ApprovalConvertsAttemptsAndTheSummaryCountsThem) {
  auto v = start("To=%2B33612345678&Channel=sms");
  start("To=%2B33612345679&Channel=sms");
  auto code = outbox()[1]["code"].get<std::string>();
  auto check = call("POST", "/v2/Services/" + service_ + "/VerificationCheck",
                    "To=%2B33612345678&Code=" + code);
  ASSERT_EQ(body(check)["status"], "approved");
  auto converted = body(call("GET", "/v2/Attempts?Status=Converted"));
  ASSERT_EQ(converted["attempts"].size(), 1u);
  EXPECT_EQ(converted["attempts"][0]["verification_sid"], v["sid"]);
  EXPECT_EQ(converted["attempts"][0]["channel_data"]["status"], "confirmed");
  auto summary = body(call("GET", "/v2/Attempts/Summary?Country=FR"));
  EXPECT_EQ(summary["total_attempts"], 2);
  EXPECT_EQ(summary["total_converted"], 1);
  EXPECT_EQ(summary["total_unconverted"], 1);
  EXPECT_EQ(summary["conversion_rate_percentage"], "50");
  EXPECT_EQ(body(call("GET", "/v2/Attempts/Summary?Country=DE"))["total_attempts"], 0);
  EXPECT_EQ(call("GET", "/v2/Attempts?Status=maybe").status, 400);
  EXPECT_EQ(call("GET", "/v2/Attempts/VL00000000000000000000000000000000").status, 404);
}

TEST_F(DeliveryApiTest, ReceiptsMoveAnAttemptForwardOnlyWithItsToken) {
  auto v = start("To=%2B33612345678&Channel=sms");
  const std::string sid = v["send_code_attempts"][0]["attempt_sid"];
  const std::string url = "/callbacks/v1/hook/" + sid + "?t=" + delivery_->callbackToken(sid);
  auto bad =
      router_->handle(ApiRequest{"POST", "/callbacks/v1/hook/" + sid + "?t=0000",
                                 "application/json", "", R"({"status":"delivered"})", "192.0.2.9"});
  EXPECT_EQ(bad.status, 404);
  auto ok = router_->handle(
      ApiRequest{"POST", url, "application/json", "", R"({"status":"delivered"})", "192.0.2.9"});
  EXPECT_EQ(ok.status, 200) << ok.body;
  auto a = body(call("GET", "/v2/Attempts/" + sid));
  EXPECT_EQ(a["channel_data"]["message_status"], "delivered");
  // A late "sent" does not move it back.
  router_->handle(
      ApiRequest{"POST", url, "application/json", "", R"({"status":"sent"})", "192.0.2.9"});
  EXPECT_EQ(body(call("GET", "/v2/Attempts/" + sid))["channel_data"]["message_status"],
            "delivered");
}

TEST_F(DeliveryApiTest, ClaimsLeaseAttemptsAndATakeoverMarksTheOutcomeUnknown) {
  start("To=%2B33612345678&Channel=sms");
  auto first = store_->claimAttempts(1000, 500, 10, "node-a");
  ASSERT_TRUE(first);
  ASSERT_EQ(first->size(), 1u);
  EXPECT_FALSE((*first)[0].outcome_unknown);
  // Leased: nobody else gets it until the lease runs out.
  EXPECT_TRUE(store_->claimAttempts(1400, 500, 10, "node-b")->empty());
  auto taken = store_->claimAttempts(1600, 500, 10, "node-b");
  ASSERT_EQ(taken->size(), 1u);
  EXPECT_TRUE((*taken)[0].outcome_unknown);
  // The first claimant lost the lease: its late outcome is ignored.
  DeliveryAttempt late = (*first)[0];
  late.message_status = message_status::kFailed;
  ASSERT_TRUE(store_->finishTry(late));
  auto now = store_->getAttempt(late.account_sid, late.sid);
  EXPECT_EQ((*now)->message_status, message_status::kSending);
}

TEST_F(DeliveryApiTest, AReceiptDuringTheTryOutlivesTheTrysOutcome) {
  start("To=%2B33612345678&Channel=sms");
  auto claimed = store_->claimAttempts(1000, 60000, 10, "node-a");
  ASSERT_EQ(claimed->size(), 1u);
  DeliveryAttempt a = (*claimed)[0];
  // The provider's callback beats the end of its own API call.
  ASSERT_TRUE(store_->applyReceipt(a.sid, "undelivered", "30008", "Unknown error", 1));
  a.message_status = message_status::kQueued;  // what the provider's answer said
  a.provider = "hook";
  a.tries = 1;
  ASSERT_TRUE(store_->finishTry(a));
  auto now = store_->getAttempt(a.account_sid, a.sid);
  EXPECT_EQ((*now)->message_status, "undelivered");
  EXPECT_EQ((*now)->error_code, "30008");
  EXPECT_EQ((*now)->tries, 1);
}

TEST_F(DeliveryApiTest, TemplatesAreListedAndUsedByTemplateSid) {
  auto list = body(call("GET", "/v2/Templates"));
  ASSERT_GE(list["templates"].size(), 4u);
  auto t = list["templates"][2];
  EXPECT_EQ(t["translations"]["en"]["is_default_translation"], true);
  EXPECT_EQ(t["translations"].size(), supportedLocales().size());
  start("To=%2B15017122661&Channel=sms&TemplateSid=" + t["sid"].get<std::string>());
  auto msg = outbox()[0];
  EXPECT_EQ(msg["body"], msg["code"].get<std::string>() + " is your verification code for Acme.");
  auto unknown =
      call("POST", "/v2/Services/" + service_ + "/Verifications",
           "To=%2B15017122662&Channel=sms&TemplateSid=HJ0123456789abcdef0123456789abcdef");
  EXPECT_EQ(unknown.status, 400);
  EXPECT_EQ(body(call("GET", "/v2/Templates?FriendlyName=expiry"))["templates"].size(), 1u);
}

TEST_F(DeliveryApiTest, Psd2NeedsAmountAndPayeeOnStartAndCheck) {
  auto svc = body(call("POST", "/v2/Services", "FriendlyName=Bank&Psd2Enabled=true"));
  const std::string base = "/v2/Services/" + svc["sid"].get<std::string>();
  auto missing = call("POST", base + "/Verifications", "To=%2B33612345678&Channel=sms");
  EXPECT_EQ(body(missing)["code"], 60206);
  auto by_call =
      call("POST", base + "/Verifications", "To=%2B33612345678&Channel=call&Amount=10&Payee=Shop");
  EXPECT_EQ(body(by_call)["code"], 60214);
  auto ok = call("POST", base + "/Verifications",
                 "To=%2B33612345678&Channel=sms&Amount=%E2%82%AC12.50&Payee=Shop&Locale=en");
  ASSERT_EQ(ok.status, 201) << ok.body;
  auto msg = outbox()[0];
  EXPECT_NE(msg["body"].get<std::string>().find("€12.50 to Shop"), std::string::npos) << msg;
  const std::string code = msg["code"];
  EXPECT_EQ(
      body(call("POST", base + "/VerificationCheck", "To=%2B33612345678&Code=" + code))["code"],
      60206);
  auto wrong = call("POST", base + "/VerificationCheck",
                    "To=%2B33612345678&Code=" + code + "&Amount=%E2%82%AC99&Payee=Shop");
  EXPECT_EQ(body(wrong)["status"], "pending");
  auto right = call("POST", base + "/VerificationCheck",
                    "To=%2B33612345678&Code=" + code + "&Amount=%E2%82%AC12.50&Payee=Shop");
  EXPECT_EQ(body(right)["status"], "approved");
}

TEST_F(DeliveryApiTest, MessagingConfigurationsCrudAndDuplicates) {
  const std::string base = "/v2/Services/" + service_ + "/MessagingConfigurations";
  const std::string mg = "MG0123456789abcdef0123456789abcdef";
  auto created = call("POST", base, "Country=FR&MessagingServiceSid=" + mg);
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(body(created)["url"], "http://verifyd.test" + base + "/FR");
  EXPECT_EQ(body(call("POST", base, "Country=FR&MessagingServiceSid=" + mg))["code"], 60213);
  EXPECT_EQ(call("POST", base, "Country=france&MessagingServiceSid=" + mg).status, 400);
  EXPECT_EQ(call("POST", base, "Country=all&MessagingServiceSid=" + mg).status, 201);
  EXPECT_EQ(body(call("GET", base))["messaging_configurations"].size(), 2u);
  const std::string other = "MGffffffffffffffffffffffffffffffff";
  auto updated = call("POST", base + "/FR", "MessagingServiceSid=" + other);
  EXPECT_EQ(body(updated)["messaging_service_sid"], other);
  EXPECT_EQ(call("DELETE", base + "/FR").status, 204);
  EXPECT_EQ(call("GET", base + "/FR").status, 404);
}

TEST_F(DeliveryApiTest, ChannelConfigurationMustBeJsonWithoutLineBreaks) {
  auto bad = call("POST", "/v2/Services/" + service_ + "/Verifications",
                  "To=ada%40example.test&Channel=email&ChannelConfiguration=nope");
  EXPECT_EQ(bad.status, 400);
  auto inject = call("POST", "/v2/Services/" + service_ + "/Verifications",
                     "To=ada%40example.test&Channel=email&ChannelConfiguration=" +
                         twilio::urlEncode(R"({"from_name":"x\r\nBcc: evil@example.test"})"));
  EXPECT_EQ(inject.status, 400);
  EXPECT_TRUE(outbox().empty());
}

}  // namespace
}  // namespace verifyd
