#include "verifyd/api/router.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "fakes.h"
#include "verifyd/api/twilio/base64.h"
#include "verifyd/common/sid.h"
#include "verifyd/crypto/openssl.h"
#include "verifyd/phone/libphonenumber_numbers.h"
#include "verifyd/storage/sqlite/sqlite_store.h"

namespace verifyd {
namespace {

using nlohmann::json;

// Golden tests of the wire format: requests in, Twilio-shaped responses out, no socket.
class RouterTest : public ::testing::Test {
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
    router_ = std::make_unique<Router>(*accounts_, *services_, *rate_limits_, *protection_,
                                       *verifier_, *store_, phones_, clock_, options(true));
    auto cred = *accounts_->createAccount("test");
    auth_ = "Basic " + twilio::base64Encode(cred.sid + ":" + cred.secret);
    account_ = cred.sid;
  }

  ApiResponse call(std::string method, std::string target, std::string body = "",
                   std::string content_type = "application/x-www-form-urlencoded",
                   std::optional<std::string> auth = std::nullopt) {
    return router_->handle(ApiRequest{std::move(method), std::move(target), std::move(content_type),
                                      auth.value_or(auth_), std::move(body), client_});
  }
  static RouterOptions options(bool dev_outbox) {
    RouterOptions o;
    o.public_url = "http://verifyd.test";
    o.dev_outbox = dev_outbox;
    return o;
  }
  static json body(const ApiResponse& r) { return json::parse(r.body); }
  static void expectError(const ApiResponse& r, int status, int code) {
    EXPECT_EQ(r.status, status);
    json j = json::parse(r.body);
    ASSERT_EQ(j.size(), 4u) << r.body;
    std::vector<std::string> keys;
    for (auto it = j.begin(); it != j.end(); ++it) keys.push_back(it.key());
    std::sort(keys.begin(), keys.end());
    EXPECT_EQ(keys, (std::vector<std::string>{"code", "message", "more_info", "status"}));
    EXPECT_EQ(j["code"], code) << r.body;
    EXPECT_EQ(j["status"], status);
    EXPECT_EQ(j["more_info"], "https://www.twilio.com/docs/errors/" + std::to_string(code));
  }

  testing::FakeClock clock_;
  testing::FakeRandom random_;
  OpenSslKeyring keyring_{std::string(32, 'r')};
  LibPhoneNumbers phones_;
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<Accounts> accounts_;
  std::unique_ptr<ServiceRegistry> services_;
  std::unique_ptr<Verifier> verifier_;
  std::unique_ptr<RateLimitRegistry> rate_limits_;
  std::unique_ptr<Protection> protection_;
  std::unique_ptr<Router> router_;
  std::string auth_, account_;
  std::string client_ = "192.0.2.1";
};

TEST_F(RouterTest, ServiceCreateReturnsEveryFieldInOrder) {
  auto r =
      call("POST", "/v2/Services",
           "FriendlyName=My+Service&CodeLength=8&LookupEnabled=True&Totp.Skew=2&"
           "Passkeys.RelyingParty.Origins=a.example,%20b.example&Whatsapp.From=whatsapp%3A%2B1");
  ASSERT_EQ(r.status, 201) << r.body;
  std::string raw = r.body;
  // ordered_json keeps the spec's order; check it on the raw text.
  std::vector<std::string> order = {"sid",
                                    "account_sid",
                                    "friendly_name",
                                    "code_length",
                                    "lookup_enabled",
                                    "psd2_enabled",
                                    "skip_sms_to_landlines",
                                    "dtmf_input_required",
                                    "tts_name",
                                    "do_not_share_warning_enabled",
                                    "custom_code_enabled",
                                    "push",
                                    "totp",
                                    "default_template_sid",
                                    "whatsapp",
                                    "passkeys",
                                    "verify_event_subscription_enabled",
                                    "date_created",
                                    "date_updated",
                                    "url",
                                    "links"};
  std::size_t pos = 0;
  for (auto& k : order) {
    auto at = raw.find("\"" + k + "\":", pos);
    ASSERT_NE(at, std::string::npos) << k;
    pos = at;
  }
  json j = body(r);
  EXPECT_EQ(j["friendly_name"], "My Service");
  EXPECT_EQ(j["code_length"], 8);
  EXPECT_EQ(j["lookup_enabled"], true);
  EXPECT_EQ(j["totp"]["skew"], 2);
  EXPECT_EQ(j["totp"]["issuer"], "My Service");
  EXPECT_EQ(j["passkeys"]["relying_party"]["origins"], json::array({"a.example", "b.example"}));
  EXPECT_EQ(j["whatsapp"]["from"], "whatsapp:+1");
  EXPECT_EQ(j["account_sid"], account_);
  EXPECT_EQ(j["date_created"], "2023-11-14T22:13:20Z");
  std::string sid = j["sid"];
  EXPECT_EQ(j["url"], "http://verifyd.test/v2/Services/" + sid);
  EXPECT_EQ(j["links"]["verifications"],
            "http://verifyd.test/v2/Services/" + sid + "/Verifications");
}

TEST_F(RouterTest, ServiceParameterErrorsNameTheParameter) {
  for (auto [form, param] : std::vector<std::pair<std::string, std::string>>{
           {"", "FriendlyName"},
           {"FriendlyName=" + std::string(31, 'x'), "FriendlyName"},
           {"FriendlyName=a&CodeLength=3", "CodeLength"},
           {"FriendlyName=a&CodeLength=11", "CodeLength"},
           {"FriendlyName=a&LookupEnabled=maybe", "LookupEnabled"},
           {"FriendlyName=a&Totp.TimeStep=61", "Totp.TimeStep"},
           {"FriendlyName=a&DefaultTemplateSid=HJ1", "DefaultTemplateSid"},
           {"FriendlyName=a&Passkeys.UserVerification=always", "Passkeys.UserVerification"}}) {
    auto r = call("POST", "/v2/Services", form);
    expectError(r, 400, 60200);
    EXPECT_NE(body(r)["message"].get<std::string>().find(param), std::string::npos) << r.body;
  }
  EXPECT_EQ(store_->listServices(account_, {}, 50)->items.size(), 0u);
}

TEST_F(RouterTest, ListPagesWithAbsoluteUrls) {
  for (int i = 0; i < 5; ++i)
    ASSERT_EQ(call("POST", "/v2/Services", "FriendlyName=s" + std::to_string(i)).status, 201);
  std::string url = "/v2/Services?PageSize=2";
  std::vector<std::string> names;
  int pages = 0;
  while (!url.empty()) {
    auto r = call("GET", url);
    ASSERT_EQ(r.status, 200) << r.body;
    json j = body(r);
    EXPECT_EQ(j["meta"]["key"], "services");
    EXPECT_EQ(j["meta"]["page"], pages);
    for (auto& s : j["services"]) names.push_back(s["friendly_name"]);
    if (pages > 0) {
      EXPECT_TRUE(j["meta"]["previous_page_url"].is_string());
    }
    ++pages;
    if (j["meta"]["next_page_url"].is_null()) break;
    std::string next = j["meta"]["next_page_url"];
    ASSERT_EQ(next.rfind("http://verifyd.test/v2/Services?PageSize=2&Page=", 0), 0u) << next;
    EXPECT_NE(next.find("PageToken=PA"), std::string::npos);
    url = next.substr(std::string("http://verifyd.test").size());
  }
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(names, (std::vector<std::string>{"s0", "s1", "s2", "s3", "s4"}));
  expectError(call("GET", "/v2/Services?PageSize=0"), 400, 60200);
  expectError(call("GET", "/v2/Services?PageSize=1001"), 400, 60200);
  expectError(call("GET", "/v2/Services?PageToken=bogus"), 400, 60200);
}

TEST_F(RouterTest, AuthenticationAndIsolation) {
  expectError(call("GET", "/v2/Services", "", "", std::string()), 401, 20003);
  expectError(call("GET", "/v2/Services", "", "", "Basic !!!"), 401, 20003);
  expectError(
      call("GET", "/v2/Services", "", "", "Basic " + twilio::base64Encode(account_ + ":wrong")),
      401, 20003);
  auto r = call("GET", "/v2/Services", "", "", std::string("Bearer x"));
  ASSERT_EQ(r.status, 401);
  EXPECT_EQ(r.headers.front().first, "WWW-Authenticate");

  auto created = body(call("POST", "/v2/Services", "FriendlyName=mine"));
  std::string sid = created["sid"];
  auto key = *accounts_->createApiKey(account_, "k");
  EXPECT_EQ(call("GET", "/v2/Services/" + sid, "", "",
                 "Basic " + twilio::base64Encode(key.sid + ":" + key.secret))
                .status,
            200);
  auto other = *accounts_->createAccount("other");
  std::string other_auth = "Basic " + twilio::base64Encode(other.sid + ":" + other.secret);
  auto r404 = call("GET", "/v2/Services/" + sid, "", "", other_auth);
  expectError(r404, 404, 20404);
  EXPECT_EQ(body(r404)["message"], "The requested resource /Services/" + sid + " was not found");
  EXPECT_EQ(body(call("GET", "/v2/Services", "", "", other_auth))["services"].size(), 0u);
}

TEST_F(RouterTest, MethodsPathsAndContentTypes) {
  auto r = call("PUT", "/v2/Services");
  expectError(r, 405, 20004);
  EXPECT_EQ(r.headers.front(), (std::pair<std::string, std::string>{"Allow", "GET, POST"}));
  expectError(call("GET", "/v2/Nope"), 404, 20404);
  expectError(call("GET", "/nope"), 404, 20404);
  expectError(call("POST", "/v2/Services", "{\"FriendlyName\":\"x\"}", "application/json"), 415,
              20415);
  expectError(call("POST", "/v2/Services", "FriendlyName=%zz"), 400, 60200);
  expectError(call("GET", "/v2/Services/VA" + std::string(32, '0') + "/Entities"), 501, 20501);
  EXPECT_EQ(call("GET", "/healthz", "", "", std::string()).status, 200);
}

TEST_F(RouterTest, VerificationLifecycleOverTheWire) {
  std::string svc = body(call("POST", "/v2/Services", "FriendlyName=Acme"))["sid"];
  const std::string base = "/v2/Services/" + svc;
  auto created = call("POST", base + "/Verifications", "To=%2B15017122661&Channel=sms");
  ASSERT_EQ(created.status, 201) << created.body;
  json v = body(created);
  EXPECT_EQ(v["status"], "pending");
  EXPECT_EQ(v["send_code_attempts"][0]["channel"], "SMS");
  auto outbox = body(call("GET", "/dev/v1/Messages?To=%2B15017122661&PageSize=1"));
  std::string text = outbox["messages"][0]["body"];
  std::string code = text.substr(text.rfind(' ') + 1);
  auto fetched = call("GET", base + "/Verifications/+15017122661");
  ASSERT_EQ(fetched.status, 200);
  EXPECT_EQ(body(fetched)["sid"], v["sid"]);
  auto wrong =
      call("POST", base + "/VerificationCheck",
           "To=%2B15017122661&Code=" + std::string(code == "000000" ? "111111" : "000000"));
  ASSERT_EQ(wrong.status, 200);
  EXPECT_EQ(body(wrong)["status"], "pending");
  EXPECT_EQ(body(wrong)["valid"], false);
  auto right = call("POST", base + "/VerificationCheck",
                    "VerificationSid=" + v["sid"].get<std::string>() + "&Code=" + code);
  ASSERT_EQ(right.status, 200);
  EXPECT_EQ(body(right)["status"], "approved");
  EXPECT_EQ(body(right)["valid"], true);
  auto gone = call("GET", base + "/Verifications/" + v["sid"].get<std::string>());
  expectError(gone, 404, 20404);
  EXPECT_EQ(body(gone)["message"], "The requested resource /Services/" + svc + "/Verifications/" +
                                       v["sid"].get<std::string>() + " was not found");
  expectError(call("POST", base + "/Verifications", "To=%2B15017122661&Channel=fax"), 400, 60200);
  expectError(call("POST", base + "/Verifications", "Channel=sms"), 400, 60200);
  expectError(call("POST", base + "/VerificationCheck", "To=%2B15017122661&Code=12"), 400, 60200);
  expectError(call("DELETE", base + "/VerificationCheck"), 405, 20004);
}

TEST_F(RouterTest, DevOutboxCanBeTurnedOff) {
  Router off(*accounts_, *services_, *rate_limits_, *protection_, *verifier_, *store_, phones_,
             clock_, options(false));
  auto r = off.handle(ApiRequest{"GET", "/dev/v1/Messages", "", auth_, "", client_});
  expectError(r, 404, 20404);
}

TEST_F(RouterTest, RateLimitsAndBucketsCrudWithTwiliosErrors) {
  std::string svc = body(call("POST", "/v2/Services", "FriendlyName=Acme"))["sid"];
  const std::string base = "/v2/Services/" + svc + "/RateLimits";
  auto created = call("POST", base, "UniqueName=end_user_ip&Description=Limit+by+IP");
  ASSERT_EQ(created.status, 201) << created.body;
  json rk = body(created);
  std::string rk_sid = rk["sid"];
  EXPECT_TRUE(isSid(rk_sid, "RK"));
  EXPECT_EQ(rk["unique_name"], "end_user_ip");
  EXPECT_EQ(rk["description"], "Limit by IP");
  EXPECT_EQ(rk["links"]["buckets"], "http://verifyd.test" + base + "/" + rk_sid + "/Buckets");
  expectError(call("POST", base, "UniqueName=end_user_ip"), 400, 60208);
  expectError(call("POST", base, "UniqueName=has+space"), 400, 60209);
  expectError(call("POST", base, ""), 400, 60200);
  for (int i = 1; i < 10; ++i)
    ASSERT_EQ(call("POST", base, "UniqueName=k" + std::to_string(i)).status, 201);
  expectError(call("POST", base, "UniqueName=k10"), 400, 60207);
  auto listed = body(call("GET", base + "?PageSize=4"));
  EXPECT_EQ(listed["meta"]["key"], "rate_limits");
  EXPECT_EQ(listed["rate_limits"].size(), 4u);
  auto updated = call("POST", base + "/" + rk_sid, "Description=changed");
  EXPECT_EQ(body(updated)["description"], "changed");

  const std::string buckets = base + "/" + rk_sid + "/Buckets";
  auto b = call("POST", buckets, "Max=4&Interval=60");
  ASSERT_EQ(b.status, 201) << b.body;
  std::string bl_sid = body(b)["sid"];
  EXPECT_EQ(body(b)["max"], 4);
  EXPECT_EQ(body(b)["rate_limit_sid"], rk_sid);
  expectError(call("POST", buckets, "Max=5&Interval=60"), 400, 60211);
  expectError(call("POST", buckets, "Max=0&Interval=30"), 400, 60200);
  expectError(call("POST", buckets, "Interval=30"), 400, 60200);
  for (int i = 1; i < 10; ++i)
    ASSERT_EQ(call("POST", buckets, "Max=9&Interval=" + std::to_string(100 + i)).status, 201);
  expectError(call("POST", buckets, "Max=9&Interval=999"), 400, 60210);
  EXPECT_EQ(body(call("GET", buckets))["buckets"].size(), 10u);
  EXPECT_EQ(body(call("POST", buckets + "/" + bl_sid, "Max=10"))["max"], 10);
  expectError(call("POST", buckets + "/" + bl_sid, "Interval=101"), 400, 60211);
  EXPECT_EQ(call("DELETE", buckets + "/" + bl_sid).status, 204);
  expectError(call("GET", buckets + "/" + bl_sid), 404, 20404);
  EXPECT_EQ(call("DELETE", base + "/" + rk_sid).status, 204);
  expectError(call("GET", base + "/" + rk_sid), 404, 20404);
  expectError(call("GET", buckets), 404, 20404);
}

TEST_F(RouterTest, RateLimitsParameterIsEnforcedPerKeyValue) {
  std::string svc = body(call("POST", "/v2/Services", "FriendlyName=Acme"))["sid"];
  const std::string base = "/v2/Services/" + svc;
  std::string rk = body(call("POST", base + "/RateLimits", "UniqueName=end_user_ip"))["sid"];
  ASSERT_EQ(call("POST", base + "/RateLimits/" + rk + "/Buckets", "Max=2&Interval=60").status, 201);
  auto start = [&](const std::string& to, const std::string& limits) {
    return call("POST", base + "/Verifications", "To=" + to + "&Channel=sms&RateLimits=" + limits);
  };
  // Compact JSON (Node) and JSON with spaces (Python) both parse.
  EXPECT_EQ(start("%2B15017122661", "%7B%22end_user_ip%22%3A%221.2.3.4%22%7D").status, 201);
  EXPECT_EQ(start("%2B15017122662", "%7B%22end_user_ip%22%3A+%221.2.3.4%22%7D").status, 201);
  auto refused = start("%2B15017122663", "%7B%22end_user_ip%22%3A%221.2.3.4%22%7D");
  expectError(refused, 429, 20429);
  bool retry_after = false;
  for (auto& [k, v] : refused.headers)
    if (k == "Retry-After") retry_after = std::stoi(v) >= 1 && std::stoi(v) <= 60;
  EXPECT_TRUE(retry_after);
  // Nothing was stored or sent for the refused start.
  expectError(call("GET", base + "/Verifications/+15017122663"), 404, 20404);
  // Another key value has its own count; time frees the bucket.
  EXPECT_EQ(start("%2B15017122663", "%7B%22end_user_ip%22%3A%225.6.7.8%22%7D").status, 201);
  clock_.advance(60);
  EXPECT_EQ(start("%2B15017122664", "%7B%22end_user_ip%22%3A%221.2.3.4%22%7D").status, 201);
  expectError(start("%2B15017122665", "%7B%22unknown%22%3A%22x%22%7D"), 400, 60200);
  expectError(start("%2B15017122665", "not-json"), 400, 60200);
}

TEST_F(RouterTest, RepeatedFailedAuthenticationIsSlowedThenRefusedForThatAddressOnly) {
  const std::string bad = "Basic " + twilio::base64Encode(account_ + ":wrong-token-value");
  for (int i = 1; i <= 20; ++i) {
    auto r = call("GET", "/v2/Services", "", "", bad);
    ASSERT_EQ(r.status, 401) << i;
    EXPECT_EQ(r.delay_ms, i <= 5 ? 0 : std::min(5000, 1000 * (i - 5))) << i;
  }
  // Refused now, even with the right credentials, from this address …
  auto refused = call("GET", "/v2/Services");
  expectError(refused, 429, 20429);
  // … but not from another one.
  client_ = "192.0.2.2";
  EXPECT_EQ(call("GET", "/v2/Services").status, 200);
  client_ = "192.0.2.1";
  clock_.advance(300);
  EXPECT_EQ(call("GET", "/v2/Services").status, 200);
}

TEST_F(RouterTest, FetchesOfOneVerificationAreLimited) {
  std::string svc = body(call("POST", "/v2/Services", "FriendlyName=Acme"))["sid"];
  const std::string base = "/v2/Services/" + svc;
  std::string sid =
      body(call("POST", base + "/Verifications", "To=%2B15017122661&Channel=sms"))["sid"];
  for (int i = 0; i < 60; ++i)
    ASSERT_EQ(call("GET", base + "/Verifications/" + sid).status, 200) << i;
  auto limited = call("GET", base + "/Verifications/" + sid);
  expectError(limited, 429, 20429);
  clock_.advance(60);
  EXPECT_EQ(call("GET", base + "/Verifications/" + sid).status, 200);
}

TEST_F(RouterTest, SafeListNumbers) {
  auto created = call("POST", "/v2/SafeList/Numbers", "PhoneNumber=%2B447400123456");
  ASSERT_EQ(created.status, 201) << created.body;
  json n = body(created);
  EXPECT_TRUE(isSid(n["sid"].get<std::string>(), "GN"));
  EXPECT_EQ(n["phone_number"], "+447400123456");
  EXPECT_EQ(n["url"], "http://verifyd.test/v2/SafeList/Numbers/+447400123456");
  EXPECT_EQ(body(call("POST", "/v2/SafeList/Numbers", "PhoneNumber=%2B447400123456"))["sid"],
            n["sid"]);
  EXPECT_EQ(body(call("GET", "/v2/SafeList/Numbers/+447400123456"))["sid"], n["sid"]);
  EXPECT_EQ(body(call("GET", "/v2/SafeList/Numbers/%2B447400123456"))["sid"], n["sid"]);
  expectError(call("POST", "/v2/SafeList/Numbers", "PhoneNumber=12"), 400, 60200);
  EXPECT_EQ(call("DELETE", "/v2/SafeList/Numbers/+447400123456").status, 204);
  expectError(call("GET", "/v2/SafeList/Numbers/+447400123456"), 404, 20404);
  expectError(call("DELETE", "/v2/SafeList/Numbers/+447400123456"), 404, 20404);
}

TEST_F(RouterTest, GeoPermissionsBlockBeforeAnythingIsStored) {
  std::string svc = body(call("POST", "/v2/Services", "FriendlyName=Acme"))["sid"];
  const std::string start = "/v2/Services/" + svc + "/Verifications";
  auto set = call("POST", "/admin/v1/GeoPermissions", "Channel=sms&Country=GB&Permission=block");
  ASSERT_EQ(set.status, 200) << set.body;
  EXPECT_EQ(body(call("GET", "/admin/v1/GeoPermissions"))["geo_permissions"][0]["permission"],
            "block");
  expectError(call("POST", "/admin/v1/GeoPermissions", "Channel=email&Country=GB&Permission=block"),
              400, 60200);
  expectError(call("POST", "/admin/v1/GeoPermissions", "Channel=sms&Country=gb&Permission=block"),
              400, 60200);
  expectError(call("POST", start, "To=%2B447400123456&Channel=sms"), 403, 60605);
  expectError(call("GET", start + "/+447400123456"), 404, 20404);  // nothing was stored
  EXPECT_EQ(call("POST", start, "To=%2B447400123457&Channel=call").status, 201);  // sms only
  EXPECT_EQ(call("POST", start, "To=%2B15017122661&Channel=sms").status, 201);    // other country
  EXPECT_EQ(call("POST", start, "To=%2B447400123458&Channel=sms&RiskCheck=disable").status, 201);
  expectError(call("POST", start, "To=%2B447400123459&Channel=sms&RiskCheck=maybe"), 400, 60200);
  ASSERT_EQ(call("POST", "/v2/SafeList/Numbers", "PhoneNumber=%2B447400123456").status, 201);
  EXPECT_EQ(call("POST", start, "To=%2B447400123456&Channel=sms").status, 201);  // safe-listed
  ASSERT_EQ(
      call("POST", "/admin/v1/GeoPermissions", "Channel=sms&Country=GB&Permission=allow").status,
      200);
  EXPECT_EQ(call("POST", start, "To=%2B447400123460&Channel=sms").status, 201);
}

TEST_F(RouterTest, LookupsV2FromOfflineMetadata) {
  auto uk = body(call("GET", "/v2/PhoneNumbers/+447400123456?Fields=line_type_intelligence"));
  EXPECT_EQ(uk["valid"], true);
  EXPECT_EQ(uk["country_code"], "GB");
  EXPECT_EQ(uk["calling_country_code"], "44");
  EXPECT_EQ(uk["national_format"], "07400 123456");
  EXPECT_EQ(uk["line_type_intelligence"]["type"], "mobile");
  EXPECT_TRUE(uk["line_type_intelligence"]["carrier_name"].is_null());
  EXPECT_TRUE(uk["caller_name"].is_null());
  auto landline =
      body(call("GET", "/v2/PhoneNumbers/%2B442071838750?Fields=line_type_intelligence"));
  EXPECT_EQ(landline["line_type_intelligence"]["type"], "landline");
  auto national = body(call("GET", "/v2/PhoneNumbers/4159929960?CountryCode=US"));
  EXPECT_EQ(national["phone_number"], "+14159929960");
  EXPECT_EQ(national["national_format"], "(415) 992-9960");
  EXPECT_TRUE(national["line_type_intelligence"].is_null());
  EXPECT_EQ(national["url"], "http://verifyd.test/v2/PhoneNumbers/+14159929960");
  auto too_long = body(call("GET", "/v2/PhoneNumbers/+141599299600"));
  EXPECT_EQ(too_long["valid"], false);
  EXPECT_EQ(too_long["validation_errors"], json::array({"TOO_LONG"}));
  auto junk = body(call("GET", "/v2/PhoneNumbers/hello"));
  EXPECT_EQ(junk["valid"], false);
  EXPECT_EQ(junk["validation_errors"], json::array({"NOT_A_NUMBER"}));
  auto caller = body(call("GET", "/v2/PhoneNumbers/+14159929960?Fields=caller_name,sim_swap"));
  EXPECT_EQ(caller["caller_name"]["error_code"], 60600);
  EXPECT_TRUE(caller["caller_name"]["caller_name"].is_null());
  EXPECT_EQ(caller["sim_swap"]["error_code"], 60600);
  expectError(call("GET", "/v2/PhoneNumbers/+14159929960?Fields=everything"), 400, 60200);
}

TEST_F(RouterTest, LookupFieldAndSkippingSmsToLandlines) {
  std::string svc =
      body(call("POST", "/v2/Services",
                "FriendlyName=Acme&LookupEnabled=true&SkipSmsToLandlines=true"))["sid"];
  const std::string start = "/v2/Services/" + svc + "/Verifications";
  auto mobile = body(call("POST", start, "To=%2B447400123456&Channel=sms"));
  EXPECT_EQ(mobile["lookup"]["carrier"]["type"], "mobile");
  EXPECT_EQ(body(call("GET", start + "/+447400123456"))["lookup"]["carrier"]["type"], "mobile");
  expectError(call("POST", start, "To=%2B442071838750&Channel=sms"), 403, 60205);
  auto voice = body(call("POST", start, "To=%2B442071838750&Channel=call"));
  EXPECT_EQ(voice["lookup"]["carrier"]["type"], "landline");
  std::string plain = body(call("POST", "/v2/Services", "FriendlyName=Plain"))["sid"];
  auto none = body(
      call("POST", "/v2/Services/" + plain + "/Verifications", "To=%2B442071838750&Channel=sms"));
  EXPECT_TRUE(none["lookup"].is_object());
  EXPECT_TRUE(none["lookup"].empty());
}

}  // namespace
}  // namespace verifyd
