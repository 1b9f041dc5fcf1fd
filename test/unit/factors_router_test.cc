// Golden tests of the factor resources on the wire: Entities, Factors, Challenges,
// Notifications, Access Tokens and Webhooks, requests in and Twilio-shaped responses out.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "fakes.h"
#include "verifyd/api/router.h"
#include "verifyd/api/twilio/base64.h"
#include "verifyd/api/twilio/form.h"
#include "verifyd/common/base32.h"
#include "verifyd/common/sid.h"
#include "verifyd/core/totp.h"
#include "verifyd/crypto/factor_crypto.h"
#include "verifyd/crypto/openssl.h"
#include "verifyd/phone/libphonenumber_numbers.h"
#include "verifyd/storage/sqlite/sqlite_store.h"

namespace verifyd::testing {
// Device keys and signatures, defined in factors_test.cc.
std::string newDeviceKey();
std::string deviceSpki(const std::string& pem);
std::string deviceSignDer(const std::string& pem, std::string_view message);
std::string deviceJws(const std::string& pem, const std::string& payload_json);
}  // namespace verifyd::testing

namespace verifyd {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;

constexpr const char* kIdentity = "ff483d1ff591898a9942916050d2ca3f";

std::vector<std::string> keysOf(const std::string& raw) {
  std::vector<std::string> keys;
  ordered_json j = ordered_json::parse(raw);
  for (auto it = j.begin(); it != j.end(); ++it) keys.push_back(it.key());
  return keys;
}

std::string form(std::initializer_list<std::pair<std::string, std::string>> fields) {
  std::string out;
  for (const auto& [k, v] : fields)
    out += (out.empty() ? "" : "&") + k + "=" + twilio::urlEncode(v);
  return out;
}

class FactorRouterTest : public ::testing::Test {
 protected:
  testing::TempDir dir_;  // first: outlives the store
  void SetUp() override {
    store_ = std::move(*SqliteStore::open(dir_.file("db"), false));
    accounts_ = std::make_unique<Accounts>(*store_, keyring_, clock_, random_);
    services_ = std::make_unique<ServiceRegistry>(*store_, clock_, random_);
    verifier_ =
        std::make_unique<Verifier>(*store_, keyring_, phones_, clock_, random_, VerifierOptions{});
    rate_limits_ = std::make_unique<RateLimitRegistry>(*store_, *store_, clock_, random_);
    protection_ = std::make_unique<Protection>(*store_, phones_, clock_, random_);
    factors_ = std::make_unique<FactorService>(*store_, *store_, crypto_, clock_, random_);
    RouterOptions o;
    o.public_url = "http://verifyd.test";
    router_ =
        std::make_unique<Router>(*accounts_, *services_, *rate_limits_, *protection_, *verifier_,
                                 *store_, phones_, clock_, o, nullptr, nullptr, factors_.get());
    auto cred = *accounts_->createAccount("test");
    auth_ = "Basic " + twilio::base64Encode(cred.sid + ":" + cred.secret);
    account_ = cred.sid;
    auto svc = call("POST", "/v2/Services", "FriendlyName=Owl+Bank");
    ASSERT_EQ(svc.status, 201) << svc.body;
    service_ = json::parse(svc.body)["sid"];
    base_ = "/v2/Services/" + service_;
    entity_ = base_ + "/Entities/" + kIdentity;
  }
  void TearDown() override {
    router_.reset();
    factors_.reset();
    store_.reset();
  }

  ApiResponse call(std::string method, std::string target, std::string body = "",
                   std::optional<std::string> auth = std::nullopt) {
    return router_->handle(ApiRequest{std::move(method), std::move(target),
                                      "application/x-www-form-urlencoded", auth.value_or(auth_),
                                      std::move(body), "192.0.2.1"});
  }
  static void expectError(const ApiResponse& r, int status, int code) {
    EXPECT_EQ(r.status, status) << r.body;
    json j = json::parse(r.body);
    EXPECT_EQ(keysOf(r.body), (std::vector<std::string>{"code", "message", "more_info", "status"}));
    EXPECT_EQ(j["code"], code) << r.body;
    EXPECT_EQ(j["status"], status);
    EXPECT_EQ(j["more_info"], "https://www.twilio.com/docs/errors/" + std::to_string(code));
  }
  static std::string header(const ApiResponse& r, const std::string& name) {
    for (const auto& [k, v] : r.headers)
      if (k == name) return v;
    return "";
  }

  json createTotp() {
    auto r = call("POST", entity_ + "/Factors",
                  form({{"FriendlyName", "John's phone"}, {"FactorType", "totp"}}));
    EXPECT_EQ(r.status, 201) << r.body;
    return json::parse(r.body);
  }
  std::string code(const json& factor, UnixTime t) {
    TotpConfig cfg{factor["config"]["alg"], factor["config"]["skew"],
                   factor["config"]["code_length"], factor["config"]["time_step"]};
    return totpCode(crypto_, cfg, *base32Decode(factor["binding"]["secret"].get<std::string>()),
                    t / cfg.time_step);
  }
  json verifiedTotp() {
    json f = createTotp();
    auto r = call("POST", entity_ + "/Factors/" + f["sid"].get<std::string>(),
                  "AuthPayload=" + code(f, clock_.now()));
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(json::parse(r.body)["status"], "verified");
    return f;
  }

  testing::FakeClock clock_;
  testing::FakeRandom random_;
  OpenSslKeyring keyring_{std::string(32, 'r')};
  OpenSslFactorCrypto crypto_{std::string(32, 'f'), "", std::string(32, 'j')};
  LibPhoneNumbers phones_;
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<Accounts> accounts_;
  std::unique_ptr<ServiceRegistry> services_;
  std::unique_ptr<Verifier> verifier_;
  std::unique_ptr<RateLimitRegistry> rate_limits_;
  std::unique_ptr<Protection> protection_;
  std::unique_ptr<FactorService> factors_;
  std::unique_ptr<Router> router_;
  std::string auth_, account_, service_, base_, entity_;
};

TEST_F(FactorRouterTest, EntitiesGolden) {
  auto r = call("POST", base_ + "/Entities", "Identity=" + std::string(kIdentity));
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(keysOf(r.body),
            (std::vector<std::string>{"sid", "identity", "account_sid", "service_sid",
                                      "date_created", "date_updated", "url", "links"}));
  json e = json::parse(r.body);
  EXPECT_TRUE(isSid(e["sid"].get<std::string>(), "YE"));
  EXPECT_EQ(e["account_sid"], account_);
  EXPECT_EQ(e["date_created"], "2023-11-14T22:13:20Z");
  const std::string url = "http://verifyd.test" + entity_;
  EXPECT_EQ(e["url"], url);
  EXPECT_EQ(e["links"], (json{{"factors", url + "/Factors"},
                              {"new_factors", url + "/Factors"},
                              {"challenges", url + "/Challenges"}}));
  expectError(call("POST", base_ + "/Entities", "Identity=" + std::string(kIdentity)), 409, 60360);
  expectError(call("POST", base_ + "/Entities", "Identity=short"), 400, 60200);
  expectError(call("POST", base_ + "/Entities", ""), 400, 60200);
  EXPECT_EQ(call("GET", entity_).body, r.body);
  auto list = call("GET", base_ + "/Entities?PageSize=1");
  ASSERT_EQ(list.status, 200);
  json l = json::parse(list.body);
  EXPECT_EQ(l["meta"]["key"], "entities");
  EXPECT_EQ(l["entities"].size(), 1u);
  EXPECT_EQ(l["meta"]["url"], "http://verifyd.test" + base_ + "/Entities?PageSize=1&Page=0");
  EXPECT_EQ(call("DELETE", entity_).status, 204);
  expectError(call("GET", entity_), 404, 20404);
  expectError(call("PUT", entity_), 405, 20004);
  expectError(call("GET", "/v2/Services/VA" + std::string(32, '0') + "/Entities"), 404, 20404);
}

TEST_F(FactorRouterTest, TotpFactorGoldenWithItsBindingOnlyOnCreate) {
  auto r = call("POST", entity_ + "/Factors",
                form({{"FriendlyName", "John's phone"},
                      {"FactorType", "totp"},
                      {"Config.CodeLength", "8"},
                      {"Config.Alg", "sha256"}}));
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(keysOf(r.body),
            (std::vector<std::string>{"sid", "account_sid", "service_sid", "entity_sid", "identity",
                                      "binding", "options", "date_created", "date_updated",
                                      "friendly_name", "status", "factor_type", "config",
                                      "metadata", "url"}));
  json f = json::parse(r.body);
  EXPECT_TRUE(isSid(f["sid"].get<std::string>(), "YF"));
  EXPECT_TRUE(isSid(f["entity_sid"].get<std::string>(), "YE"));
  EXPECT_EQ(f["identity"], kIdentity);
  EXPECT_EQ(f["status"], "unverified");
  EXPECT_EQ(f["options"], nullptr);
  EXPECT_EQ(f["metadata"], nullptr);
  EXPECT_EQ(keysOf(ordered_json::parse(r.body)["config"].dump()),
            (std::vector<std::string>{"alg", "skew", "code_length", "time_step"}));
  EXPECT_EQ(f["config"],
            (json{{"alg", "sha256"}, {"skew", 1}, {"code_length", 8}, {"time_step", 30}}));
  std::string secret = f["binding"]["secret"];
  EXPECT_EQ(f["binding"]["uri"], "otpauth://totp/Owl%20Bank:John%27s%20phone?secret=" + secret +
                                     "&issuer=Owl%20Bank&algorithm=SHA256&digits=8&period=30");
  const std::string sid = f["sid"];
  auto fetched = call("GET", entity_ + "/Factors/" + sid);
  ASSERT_EQ(fetched.status, 200);
  EXPECT_EQ(keysOf(fetched.body),
            (std::vector<std::string>{"sid", "account_sid", "service_sid", "entity_sid", "identity",
                                      "date_created", "date_updated", "friendly_name", "status",
                                      "factor_type", "config", "metadata", "url"}));
  EXPECT_EQ(fetched.body.find(secret), std::string::npos);
  auto list = call("GET", entity_ + "/Factors");
  EXPECT_EQ(list.body.find(secret), std::string::npos);
  EXPECT_EQ(json::parse(list.body)["meta"]["key"], "factors");
  // The entity came with it.
  EXPECT_EQ(call("GET", entity_).status, 200);
  expectError(call("POST", entity_ + "/Factors", "FriendlyName=x&FactorType=sms"), 400, 60200);
  expectError(call("POST", entity_ + "/Factors", "FriendlyName=x&FactorType=totp&Config.Skew=3"),
              400, 60200);
  expectError(call("POST", entity_ + "/Factors", "FriendlyName=x&FactorType=totp&Config.Skew=a"),
              400, 60200);
  EXPECT_EQ(call("DELETE", entity_ + "/Factors/" + sid).status, 204);
  expectError(call("GET", entity_ + "/Factors/" + sid), 404, 20404);
}

TEST_F(FactorRouterTest, WrongCodesAnswer200UnverifiedUntilTheFifth) {
  json f = createTotp();
  const std::string url = entity_ + "/Factors/" + f["sid"].get<std::string>();
  std::string wrong = code(f, clock_.now()) == "000000" ? "111111" : "000000";
  for (int i = 0; i < 4; ++i) {
    auto r = call("POST", url, "AuthPayload=" + wrong);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(json::parse(r.body)["status"], "unverified");
  }
  expectError(call("POST", url, "AuthPayload=" + wrong), 429, 60310);
  expectError(call("POST", url, "AuthPayload=" + code(f, clock_.now())), 429, 60310);
}

TEST_F(FactorRouterTest, TotpChallengeGolden) {
  json f = createTotp();
  expectError(call("POST", entity_ + "/Challenges", "FactorSid=" + f["sid"].get<std::string>()),
              403, 60318);
  f = verifiedTotp();
  const std::string factor_sid = f["sid"];
  auto r = call("POST", entity_ + "/Challenges",
                form({{"FactorSid", factor_sid},
                      {"AuthPayload", code(f, clock_.now() + 30)},
                      {"Details.Message", "Log in?"},
                      {"Details.Fields", R"({"label":"IP","value":"10.0.0.1"})"},
                      {"Details.Fields", R"({"label":"City","value":"Berlin"})"},
                      {"HiddenDetails", R"({"ip":"10.0.0.1"})"}}));
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(keysOf(r.body), (std::vector<std::string>{
                                "sid", "account_sid", "service_sid", "entity_sid", "identity",
                                "factor_sid", "date_created", "date_updated", "date_responded",
                                "expiration_date", "status", "responded_reason", "details",
                                "hidden_details", "metadata", "factor_type", "url", "links"}));
  json c = json::parse(r.body);
  EXPECT_EQ(c["status"], "approved");
  EXPECT_EQ(c["responded_reason"], "none");
  EXPECT_EQ(c["date_responded"], "2023-11-14T22:13:20Z");
  EXPECT_EQ(c["expiration_date"], "2023-11-14T22:18:20Z");
  EXPECT_EQ(c["details"], (json{{"message", "Log in?"},
                                {"fields",
                                 {{{"label", "IP"}, {"value", "10.0.0.1"}},
                                  {{"label", "City"}, {"value", "Berlin"}}}}}));
  EXPECT_EQ(c["hidden_details"], (json{{"ip", "10.0.0.1"}}));
  EXPECT_EQ(c["metadata"], nullptr);
  EXPECT_EQ(c["factor_type"], "totp");
  const std::string url =
      "http://verifyd.test" + entity_ + "/Challenges/" + c["sid"].get<std::string>();
  EXPECT_EQ(c["url"], url);
  EXPECT_EQ(c["links"], (json{{"notifications", url + "/Notifications"}}));

  auto fetched = call("GET", entity_ + "/Challenges/" + c["sid"].get<std::string>());
  ASSERT_EQ(fetched.status, 200);
  EXPECT_EQ(json::parse(fetched.body), c);
  EXPECT_EQ(header(fetched, "Twilio-Verify-Signature-Fields"),
            "sid,account_sid,service_sid,entity_sid,identity,factor_sid,factor_type,date_created,"
            "expiration_date,details,hidden_details");

  // A wrong code leaves a new challenge pending; the fifth wrong one answers 60308.
  auto pending = call("POST", entity_ + "/Challenges", "FactorSid=" + factor_sid);
  ASSERT_EQ(pending.status, 201);
  json p = json::parse(pending.body);
  EXPECT_EQ(p["status"], "pending");
  EXPECT_EQ(p["date_responded"], nullptr);
  EXPECT_EQ(p["details"], (json{{"message", ""}, {"fields", json::array()}}));
  EXPECT_EQ(p["hidden_details"], nullptr);
  const std::string purl = entity_ + "/Challenges/" + p["sid"].get<std::string>();
  for (int i = 0; i < 4; ++i) {
    auto a = call("POST", purl, "AuthPayload=" + code(f, clock_.now()));  // already used
    ASSERT_EQ(a.status, 200) << a.body;
    EXPECT_EQ(json::parse(a.body)["status"], "pending");
  }
  expectError(call("POST", purl, "AuthPayload=" + code(f, clock_.now())), 429, 60308);

  auto list = call("GET", entity_ + "/Challenges?Status=approved&FactorSid=" + factor_sid);
  ASSERT_EQ(list.status, 200) << list.body;
  json l = json::parse(list.body);
  EXPECT_EQ(l["challenges"].size(), 1u);
  EXPECT_EQ(l["meta"]["key"], "challenges");
  EXPECT_EQ(l["meta"]["url"], "http://verifyd.test" + entity_ + "/Challenges?FactorSid=" +
                                  factor_sid + "&Status=approved&PageSize=50&Page=0");
  expectError(call("GET", entity_ + "/Challenges?Status=nope"), 400, 60200);
  expectError(call("POST", entity_ + "/Challenges", "FactorSid=nope"), 400, 60200);
  expectError(call("POST", entity_ + "/Challenges",
                   "FactorSid=" + factor_sid + "&ExpirationDate=2030-01-01T00:00:00Z"),
              400, 60200);
}

class FactorRouterPushTest : public FactorRouterTest {
 protected:
  void SetUp() override {
    FactorRouterTest::SetUp();
    key_ = testing::newDeviceKey();
  }
  std::string pushForm(const std::string& platform = "fcm") {
    return form({{"FriendlyName", "John's iPhone"},
                 {"FactorType", "push"},
                 {"Binding.Alg", "ES256"},
                 {"Binding.PublicKey", testing::deviceSpki(key_)},
                 {"Config.AppId", "com.example.app"},
                 {"Config.NotificationPlatform", platform},
                 {"Config.NotificationToken", std::string(40, 't')},
                 {"Config.SdkVersion", "1.0.0"},
                 {"Metadata", R"({"os":"Android"})"}});
  }
  json verifiedPush(std::optional<std::string> auth = std::nullopt) {
    auto r = call("POST", entity_ + "/Factors", pushForm(), auth);
    EXPECT_EQ(r.status, 201) << r.body;
    json f = json::parse(r.body);
    std::string sid = f["sid"];
    auto v = call("POST", entity_ + "/Factors/" + sid,
                  form({{"AuthPayload", testing::deviceSignDer(key_, sid)}}), auth);
    EXPECT_EQ(v.status, 200) << v.body;
    EXPECT_EQ(json::parse(v.body)["status"], "verified");
    return f;
  }
  std::string createChallenge(const std::string& factor_sid) {
    auto r = call("POST", entity_ + "/Challenges",
                  form({{"FactorSid", factor_sid},
                        {"Details.Message", "Log in to Owl Bank?"},
                        {"Details.Fields", R"({"label":"IP","value":"10.0.0.1"})"},
                        {"HiddenDetails", R"({"ip":"10.0.0.1", "city":"Berlin"})"}}));
    EXPECT_EQ(r.status, 201) << r.body;
    return json::parse(r.body)["sid"];
  }
  // What a device does: fetch, copy the fields the header names, add its answer, sign.
  std::string answer(const std::string& challenge_sid, const std::string& status,
                     std::optional<std::string> auth = std::nullopt) {
    auto fetched = call("GET", entity_ + "/Challenges/" + challenge_sid, "", auth);
    EXPECT_EQ(fetched.status, 200) << fetched.body;
    json body = json::parse(fetched.body);
    json payload = json::object();
    std::string fields = header(fetched, "Twilio-Verify-Signature-Fields");
    std::size_t start = 0;
    while (start <= fields.size()) {
      auto comma = fields.find(',', start);
      std::string name = fields.substr(start, comma - start);
      payload[name] = body[name];
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    payload["status"] = status;
    return testing::deviceJws(key_, payload.dump());
  }
  std::string key_;
};

TEST_F(FactorRouterPushTest, PushFactorGolden) {
  auto r = call("POST", entity_ + "/Factors", pushForm());
  ASSERT_EQ(r.status, 201) << r.body;
  json f = json::parse(r.body);
  EXPECT_EQ(f["binding"], (json{{"alg", "ES256"}, {"public_key", testing::deviceSpki(key_)}}));
  EXPECT_EQ(keysOf(ordered_json::parse(r.body)["config"].dump()),
            (std::vector<std::string>{"sdk_version", "app_id", "notification_platform",
                                      "notification_token"}));
  EXPECT_EQ(f["config"]["notification_token"], std::string(40, 't'));
  EXPECT_EQ(f["metadata"], (json{{"os", "Android"}}));
  expectError(call("POST", entity_ + "/Factors",
                   form({{"FriendlyName", "x"},
                         {"FactorType", "push"},
                         {"Binding.Alg", "ES256"},
                         {"Binding.PublicKey", "bm90IGEga2V5"},
                         {"Config.AppId", "a"},
                         {"Config.NotificationPlatform", "none"}})),
              400, 60200);
}

TEST_F(FactorRouterPushTest, DeviceAnswersWithTheFieldsTheFetchNamed) {
  json f = verifiedPush();
  std::string sid = createChallenge(f["sid"]);
  const std::string url = entity_ + "/Challenges/" + sid;
  // A bad signature: 403 60324, the challenge still pending.
  auto other = testing::newDeviceKey();
  expectError(call("POST", url,
                   form({{"AuthPayload", testing::deviceJws(other, R"({"status":"approved"})")}})),
              403, 60324);
  clock_.advance(2);
  auto r = call("POST", url,
                form({{"AuthPayload", answer(sid, "approved")}, {"Metadata", R"({"os":"iOS"})"}}));
  ASSERT_EQ(r.status, 200) << r.body;
  json c = json::parse(r.body);
  EXPECT_EQ(c["status"], "approved");
  EXPECT_EQ(c["date_responded"], "2023-11-14T22:13:22Z");
  EXPECT_EQ(c["metadata"], (json{{"os", "iOS"}}));

  std::string denied = createChallenge(f["sid"]);
  r = call("POST", entity_ + "/Challenges/" + denied,
           form({{"AuthPayload", answer(denied, "denied")}}));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body)["status"], "denied");

  // Notifications of a pending push challenge.
  std::string pending = createChallenge(f["sid"]);
  auto n = call("POST", entity_ + "/Challenges/" + pending + "/Notifications", "Ttl=150");
  ASSERT_EQ(n.status, 201) << n.body;
  EXPECT_EQ(keysOf(n.body),
            (std::vector<std::string>{"sid", "account_sid", "service_sid", "entity_sid", "identity",
                                      "challenge_sid", "priority", "ttl", "date_created"}));
  json nj = json::parse(n.body);
  EXPECT_TRUE(isSid(nj["sid"].get<std::string>(), "NT"));
  EXPECT_EQ(nj["ttl"], 150);
  EXPECT_EQ(nj["priority"], "high");
  expectError(call("POST", entity_ + "/Challenges/" + pending + "/Notifications", "Ttl=301"), 400,
              60200);
  expectError(call("POST", entity_ + "/Challenges/" + sid + "/Notifications", ""), 400, 60200);
  // Past its expiration a challenge reads expired.
  clock_.advance(301);
  r = call("GET", entity_ + "/Challenges/" + pending);
  EXPECT_EQ(json::parse(r.body)["status"], "expired");
}

TEST_F(FactorRouterPushTest, AccessTokenGoldenAndDeviceAuthentication) {
  auto r = call("POST", base_ + "/AccessTokens",
                form({{"Identity", kIdentity},
                      {"FactorType", "push"},
                      {"FactorFriendlyName", "John's iPhone"},
                      {"Ttl", "300"}}));
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(keysOf(r.body),
            (std::vector<std::string>{"sid", "account_sid", "service_sid", "entity_identity",
                                      "factor_type", "factor_friendly_name", "token", "url", "ttl",
                                      "date_created"}));
  json t = json::parse(r.body);
  EXPECT_TRUE(isSid(t["sid"].get<std::string>(), "YK"));
  EXPECT_EQ(t["ttl"], 300);
  EXPECT_EQ(t["url"],
            "http://verifyd.test" + base_ + "/AccessTokens/" + t["sid"].get<std::string>());
  EXPECT_EQ(call("GET", base_ + "/AccessTokens/" + t["sid"].get<std::string>()).body, r.body);
  expectError(call("POST", base_ + "/AccessTokens",
                   form({{"Identity", kIdentity}, {"FactorType", "totp"}})),
              400, 60200);
  expectError(call("POST", base_ + "/AccessTokens",
                   form({{"Identity", kIdentity}, {"FactorType", "push"}, {"Ttl", "30"}})),
              400, 60200);

  const std::string device =
      "Basic " + twilio::base64Encode("token:" + t["token"].get<std::string>());
  // The device enrols and verifies its factor, then answers a challenge, with the token only.
  json f = verifiedPush(device);
  EXPECT_EQ(f["friendly_name"], "John's iPhone");
  std::string sid = createChallenge(f["sid"]);
  auto listed = call("GET", entity_ + "/Challenges", "", device);
  EXPECT_EQ(listed.status, 200) << listed.body;
  auto answered = call("POST", entity_ + "/Challenges/" + sid,
                       form({{"AuthPayload", answer(sid, "approved", device)}}), device);
  ASSERT_EQ(answered.status, 200) << answered.body;
  EXPECT_EQ(json::parse(answered.body)["status"], "approved");
  // Nothing else.
  expectError(call("GET", "/v2/Services", "", device), 403, 20403);
  expectError(call("GET", base_, "", device), 403, 20403);
  expectError(call("GET", entity_, "", device), 403, 20403);
  expectError(call("GET", entity_ + "/Factors", "", device), 403, 20403);
  expectError(call("DELETE", entity_ + "/Factors/" + f["sid"].get<std::string>(), "", device), 403,
              20403);
  expectError(
      call("POST", entity_ + "/Challenges", "FactorSid=" + f["sid"].get<std::string>(), device),
      403, 20403);
  expectError(call("POST", entity_ + "/Factors", "FriendlyName=x&FactorType=totp", device), 403,
              20403);
  expectError(call("GET", base_ + "/Entities/someone-else-1234/Challenges", "", device), 403,
              20403);
  expectError(call("GET", base_ + "/Webhooks", "", device), 403, 20403);
  expectError(call("POST", base_ + "/AccessTokens", "Identity=x&FactorType=push", device), 403,
              20403);
  // A token that does not verify, or has expired.
  expectError(call("GET", entity_ + "/Challenges", "",
                   "Basic " + twilio::base64Encode("token:" + t["token"].get<std::string>() + "x")),
              401, 20003);
  clock_.advance(301);
  expectError(call("GET", entity_ + "/Challenges", "", device), 401, 20003);
}

TEST_F(FactorRouterTest, WebhooksGolden) {
  auto r = call("POST", base_ + "/Webhooks",
                "FriendlyName=hook&EventTypes=factor.verified&EventTypes=challenge.approved&"
                "WebhookUrl=https%3A%2F%2Fowlbank.example%2Fhook&Version=v2");
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(keysOf(r.body),
            (std::vector<std::string>{"sid", "service_sid", "account_sid", "friendly_name",
                                      "event_types", "status", "version", "webhook_url",
                                      "webhook_method", "date_created", "date_updated", "url"}));
  json w = json::parse(r.body);
  EXPECT_TRUE(isSid(w["sid"].get<std::string>(), "YW"));
  EXPECT_EQ(w["event_types"], (json{"factor.verified", "challenge.approved"}));
  EXPECT_EQ(w["status"], "enabled");
  EXPECT_EQ(w["webhook_method"], "POST");
  const std::string url = base_ + "/Webhooks/" + w["sid"].get<std::string>();
  EXPECT_EQ(w["url"], "http://verifyd.test" + url);
  auto u = call("POST", url, "Status=disabled&EventTypes=*");
  ASSERT_EQ(u.status, 200) << u.body;
  EXPECT_EQ(json::parse(u.body)["status"], "disabled");
  EXPECT_EQ(json::parse(u.body)["event_types"], (json{"*"}));
  EXPECT_EQ(call("GET", url).body, u.body);
  auto list = call("GET", base_ + "/Webhooks");
  EXPECT_EQ(json::parse(list.body)["meta"]["key"], "webhooks");
  EXPECT_EQ(json::parse(list.body)["webhooks"].size(), 1u);
  expectError(call("POST", url, "EventTypes=factor.nope"), 400, 60200);
  expectError(call("POST", base_ + "/Webhooks", "FriendlyName=x&EventTypes=*&WebhookUrl=nope"), 400,
              60200);
  expectError(call("POST", base_ + "/Webhooks", "FriendlyName=x&WebhookUrl=https%3A%2F%2Fa.b"), 400,
              60200);
  EXPECT_EQ(call("DELETE", url).status, 204);
  expectError(call("GET", url), 404, 20404);
  expectError(call("PUT", base_ + "/Webhooks"), 405, 20004);
}

TEST_F(FactorRouterTest, PasskeysAndFormsStayNotImplemented) {
  expectError(call("POST", base_ + "/Passkeys/Factors", ""), 501, 20501);
  expectError(call("GET", "/v2/Forms/form-push"), 501, 20501);
}

}  // namespace
}  // namespace verifyd
