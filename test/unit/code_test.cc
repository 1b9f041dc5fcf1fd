#include "verifyd/core/code.h"

#include <gtest/gtest.h>

#include <array>
#include <cmath>

#include "fakes.h"
#include "verifyd/crypto/openssl.h"

namespace verifyd {
namespace {

OpenSslKeyring keyring() { return OpenSslKeyring(std::string(32, 'k')); }

TEST(Code, DerivedCodeHasTheRequestedLengthAndOnlyDigits) {
  auto k = keyring();
  testing::FakeRandom random;
  for (int len = 4; len <= 10; ++len) {
    std::string code = deriveCode(k, random.bytes(16), len);
    ASSERT_EQ(code.size(), static_cast<std::size_t>(len));
    for (char c : code) EXPECT_TRUE(c >= '0' && c <= '9') << code;
  }
}

TEST(Code, SameSeedGivesSameCodeAndOtherSecretAnother) {
  auto k = keyring();
  OpenSslKeyring other(std::string(32, 'x'));
  EXPECT_EQ(deriveCode(k, "seed-0123456789a", 6), deriveCode(k, "seed-0123456789a", 6));
  EXPECT_NE(deriveCode(k, "seed-0123456789a", 10), deriveCode(other, "seed-0123456789a", 10));
}

TEST(Code, DigitsAreUniform) {
  // Chi-square over the last digit of 20000 codes: with 9 degrees of freedom, 27.9 is p=0.001.
  auto k = keyring();
  testing::FakeRandom random(7);
  std::array<int, 10> counts{};
  const int n = 20000;
  for (int i = 0; i < n; ++i) counts[deriveCode(k, random.bytes(16), 6).back() - '0']++;
  double chi = 0;
  for (int c : counts) chi += std::pow(c - n / 10.0, 2) / (n / 10.0);
  EXPECT_LT(chi, 27.9);
}

TEST(Code, HashDependsOnVerificationAndCode) {
  auto k = keyring();
  auto h = hashCode(k, "VE1", "123456");
  EXPECT_EQ(h.size(), 32u);
  EXPECT_EQ(h, hashCode(k, "VE1", "123456"));
  EXPECT_NE(h, hashCode(k, "VE2", "123456"));
  EXPECT_NE(h, hashCode(k, "VE1", "123457"));
  EXPECT_EQ(h.find("123456"), std::string::npos);
}

TEST(Code, MessageText) {
  ServiceSettings s;
  s.friendly_name = "Acme";
  EXPECT_EQ(renderMessage(s, "Acme", "123456"), "Your Acme verification code is: 123456");
  s.do_not_share_warning_enabled = true;
  EXPECT_EQ(renderMessage(s, "Acme", "123456"),
            "Your Acme verification code is: 123456. Don't share this code with anyone; our "
            "employees will never ask for the code.");
}

TEST(Keyring, SealRoundTripsAndRejectsTampering) {
  auto k = keyring();
  std::string sealed = k.seal("token-value");
  EXPECT_EQ(sealed.find("token-value"), std::string::npos);
  auto opened = k.open(sealed);
  ASSERT_TRUE(opened);
  EXPECT_EQ(*opened, "token-value");
  sealed[14] ^= 1;
  EXPECT_FALSE(k.open(sealed));
  EXPECT_TRUE(k.equal("abc", "abc"));
  EXPECT_FALSE(k.equal("abc", "abd"));
  EXPECT_FALSE(k.equal("abc", "abcd"));
}

}  // namespace
}  // namespace verifyd

#include <nlohmann/json.hpp>

#include "verifyd/api/twilio/encode.h"
#include "verifyd/api/twilio/json_writer.h"

namespace verifyd {
namespace {

TEST(JsonWriter, EscapesAndParsesBack) {
  twilio::JsonWriter w;
  std::string nasty = std::string("q\"b\\s\n\t\x01 €", 13);
  w.begin().field("a", nasty).field("n", std::int64_t{-5}).null("z").beginArray("arr");
  w.beginObject().field("x", true).end().beginObject().end();
  w.endArray().raw("o", "{}").end();
  auto j = nlohmann::json::parse(w.take());
  EXPECT_EQ(j["a"], nasty);
  EXPECT_EQ(j["n"], -5);
  EXPECT_TRUE(j["z"].is_null());
  EXPECT_EQ(j["arr"].size(), 2u);
  EXPECT_EQ(j["arr"][0]["x"], true);
  EXPECT_TRUE(j["o"].is_object());
}

TEST(JsonWriter, VerificationFieldsInSpecOrder) {
  Verification v;
  v.sid = "VE1";
  v.service_sid = "VA1";
  v.account_sid = "AC1";
  v.to = "+15017122661";
  v.channel = "sms";
  v.send_attempts = {{"VL1", "sms", 0}, {"VL2", "whatsapp", 60}};
  v.amount = "€1";
  auto j = nlohmann::ordered_json::parse(twilio::encodeVerification(v, "http://h"));
  std::vector<std::string> keys;
  for (auto& [k, _] : j.items()) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"sid", "service_sid", "account_sid", "to", "channel",
                                            "status", "valid", "lookup", "amount", "payee",
                                            "send_code_attempts", "date_created", "date_updated",
                                            "sna", "url"}));
  EXPECT_EQ(j["send_code_attempts"][1]["channel"], "whatsapp");
  EXPECT_EQ(j["send_code_attempts"][0]["channel"], "SMS");
  EXPECT_EQ(j["send_code_attempts"][1]["time"], "1970-01-01T00:01:00Z");
  EXPECT_EQ(j["amount"], "€1");
  EXPECT_TRUE(j["payee"].is_null());
  EXPECT_EQ(j["url"], "http://h/v2/Services/VA1/Verifications/VE1");
}

}  // namespace
}  // namespace verifyd
