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
