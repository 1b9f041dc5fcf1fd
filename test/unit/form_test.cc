#include "verifyd/api/twilio/form.h"

#include <gtest/gtest.h>

#include "verifyd/api/twilio/base64.h"

namespace verifyd::twilio {
namespace {

TEST(Form, DecodesPlusAndPercentTwentyAsSpace) {
  auto p = parseForm("FriendlyName=My+Verify%20Service&To=%2B15017122661");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->get("FriendlyName"), "My Verify Service");
  EXPECT_EQ(p->get("To"), "+15017122661");
}

TEST(Form, RejectsBadEscapes) {
  EXPECT_FALSE(parseForm("To=%ZZ"));
  EXPECT_FALSE(parseForm("To=%4"));
  EXPECT_FALSE(parseForm("To=abc%"));
  auto e = parseForm("To=%G0").error();
  EXPECT_EQ(e.kind, ErrorKind::kInvalidArgument);
}

TEST(Form, RepeatedKeysAndDottedNames) {
  auto p = parseForm("EventTypes=a&EventTypes=b&Totp.Issuer=Acme&&Flag");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->all("EventTypes"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(p->get("Totp.Issuer"), "Acme");
  EXPECT_EQ(p->get("Flag"), "");
}

TEST(Form, BooleansInAnyCase) {
  auto p = parseForm("A=true&B=True&C=FALSE&D=maybe");
  ASSERT_TRUE(p);
  EXPECT_EQ(*p->getBool("A"), std::optional<bool>(true));
  EXPECT_EQ(*p->getBool("B"), std::optional<bool>(true));
  EXPECT_EQ(*p->getBool("C"), std::optional<bool>(false));
  EXPECT_EQ(*p->getBool("Z"), std::optional<bool>());
  auto bad = p->getBool("D");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().param, "D");
}

TEST(Form, IntegersWithinRange) {
  auto p = parseForm("A=4&B=11&C=x&D=5x");
  ASSERT_TRUE(p);
  EXPECT_EQ(*p->getInt("A", 4, 10), std::optional<int>(4));
  EXPECT_FALSE(p->getInt("B", 4, 10));
  EXPECT_FALSE(p->getInt("C", 4, 10));
  EXPECT_FALSE(p->getInt("D", 4, 10));
}

TEST(Form, PathSegmentsKeepPlus) {
  EXPECT_EQ(decodePathSegment("+15017122661"), "+15017122661");
  EXPECT_EQ(decodePathSegment("%2B15017122661"), "+15017122661");
  EXPECT_FALSE(decodePathSegment("%zz"));
  EXPECT_EQ(urlEncode("+1 a"), "%2B1%20a");
}

TEST(Base64, RoundTripAndRejects) {
  for (std::string s : {"", "a", "ab", "abc", "AC123:token"})
    EXPECT_EQ(base64Decode(base64Encode(s)), s);
  EXPECT_FALSE(base64Decode("abc"));
  EXPECT_FALSE(base64Decode("ab=c"));
  EXPECT_FALSE(base64Decode("a!cd"));
}

}  // namespace
}  // namespace verifyd::twilio

namespace verifyd::twilio {
namespace {

TEST(Form, RejectsInvalidUtf8NamingTheParameter) {
  auto bad = parseForm("FriendlyName=%FF%FE");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().param, "FriendlyName");
  EXPECT_FALSE(parseForm("FriendlyName=%C3"));        // truncated sequence
  EXPECT_FALSE(parseForm("FriendlyName=%C0%AF"));     // overlong
  EXPECT_FALSE(parseForm("FriendlyName=%ED%A0%80"));  // surrogate
  EXPECT_FALSE(parseForm("%FF=x"));
  auto ok = parseForm("FriendlyName=%E2%82%AC%F0%9F%98%80%D0%96");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->get("FriendlyName"), "€😀Ж");
}

}  // namespace
}  // namespace verifyd::twilio

#include "fakes.h"
#include "verifyd/common/sid.h"

namespace verifyd {
namespace {

TEST(Sid, OrderedSidsAreValidAndSortByTime) {
  testing::FakeRandom random;
  std::string a = makeOrderedSid("VE", 1700000000, random);
  std::string b = makeOrderedSid("VE", 1700000001, random);
  EXPECT_TRUE(isSid(a, "VE"));
  EXPECT_TRUE(isSid(b, "VE"));
  EXPECT_LT(a, b);
  EXPECT_EQ(a.substr(2, 8), "6553f100");
  EXPECT_NE(makeOrderedSid("VE", 1700000000, random).substr(10), a.substr(10));
  EXPECT_TRUE(isSid(makeSid("VA", random), "VA"));
  EXPECT_FALSE(isSid("VA123", "VA"));
  EXPECT_FALSE(isSid("VE" + std::string(32, 'g'), "VE"));
}

}  // namespace
}  // namespace verifyd
