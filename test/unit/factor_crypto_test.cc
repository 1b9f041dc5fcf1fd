#include "verifyd/crypto/factor_crypto.h"

#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include <fstream>
#include <memory>
#include <string>

#include "fakes.h"
#include "verifyd/common/base32.h"
#include "verifyd/core/totp.h"

namespace verifyd {
namespace {

const std::string kKeyA(32, 'a');
const std::string kKeyB(32, 'b');
const std::string kJwtKey(32, 'j');

OpenSslFactorCrypto crypto() { return OpenSslFactorCrypto(kKeyA, "", kJwtKey); }

TotpConfig config(std::string alg, int digits = 6, int step = 30, int skew = 1) {
  TotpConfig c;
  c.alg = std::move(alg);
  c.code_length = digits;
  c.time_step = step;
  c.skew = skew;
  return c;
}

// ---- Base32 ----

TEST(Base32, Rfc4648Vectors) {
  const std::pair<const char*, const char*> vectors[] = {
      {"", ""},
      {"f", "MY"},
      {"fo", "MZXQ"},
      {"foo", "MZXW6"},
      {"foob", "MZXW6YQ"},
      {"fooba", "MZXW6YTB"},
      {"foobar", "MZXW6YTBOI"},
  };
  for (auto [plain, encoded] : vectors) {
    EXPECT_EQ(base32Encode(plain), encoded);
    EXPECT_EQ(base32Decode(encoded), std::string(plain)) << encoded;
  }
  // The padded forms of RFC 4648 §10 decode too.
  EXPECT_EQ(base32Decode("MY======"), "f");
  EXPECT_EQ(base32Decode("MZXQ===="), "fo");
  EXPECT_EQ(base32Decode("MZXW6==="), "foo");
  EXPECT_EQ(base32Decode("MZXW6YQ="), "foob");
  EXPECT_EQ(base32Decode("MZXW6YTBOI======"), "foobar");
}

TEST(Base32, RoundTripsEveryLengthAndByte) {
  testing::FakeRandom random;
  for (std::size_t n = 0; n <= 70; ++n) {
    std::string bytes = random.bytes(n);
    std::string text = base32Encode(bytes);
    EXPECT_EQ(text.find('='), std::string::npos);
    EXPECT_EQ(base32Decode(text), bytes) << n;
  }
  std::string all;
  for (int c = 0; c < 256; ++c) all.push_back(static_cast<char>(c));
  EXPECT_EQ(base32Decode(base32Encode(all)), all);
}

TEST(Base32, DecodeIsCaseInsensitiveAndIgnoresSpacesAndPadding) {
  EXPECT_EQ(base32Decode("gezd gnbv gy3t qojq gezd gnbv gy3t qojq"), "12345678901234567890");
  EXPECT_EQ(base32Decode("GEZDGNBVGY3TQOJQgezdgnbvgy3tqojq"), "12345678901234567890");
  EXPECT_EQ(base32Decode("MZXW6==="), "foo");
}

TEST(Base32, DecodeRejectsBadCharactersAndImpossibleLengths) {
  EXPECT_EQ(base32Decode("MZXW1"), std::nullopt);  // 1 is not Base32
  EXPECT_EQ(base32Decode("MZXW8"), std::nullopt);
  EXPECT_EQ(base32Decode("MZ-XW"), std::nullopt);
  EXPECT_EQ(base32Decode("MZXW6YTB\xc3\xa9"), std::nullopt);
  EXPECT_EQ(base32Decode("M"), std::nullopt);       // 1 symbol: not a whole byte
  EXPECT_EQ(base32Decode("MZX"), std::nullopt);     // 3 symbols
  EXPECT_EQ(base32Decode("MZXW6Y"), std::nullopt);  // 6 symbols
}

// ---- TOTP ----

TEST(Totp, Rfc4226HotpVectors) {
  auto c = crypto();
  const char* expected[] = {"755224", "287082", "359152", "969429", "338314",
                            "254676", "287922", "162583", "399871", "520489"};
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(totpCode(c, config("sha1"), "12345678901234567890", i), expected[i]) << i;
}

TEST(Totp, Rfc6238AppendixBVectors) {
  auto c = crypto();
  const std::string sha1_key = "12345678901234567890";
  const std::string sha256_key = "12345678901234567890123456789012";
  const std::string sha512_key = "1234567890123456789012345678901234567890123456789012345678901234";
  ASSERT_EQ(sha512_key.size(), 64u);
  struct Row {
    std::int64_t time;
    const char *sha1, *sha256, *sha512;
  };
  const Row rows[] = {
      {59, "94287082", "46119246", "90693936"},
      {1111111109, "07081804", "68084774", "25091201"},
      {1111111111, "14050471", "67062674", "99943326"},
      {1234567890, "89005924", "91819424", "93441116"},
      {2000000000, "69279037", "90698825", "38618901"},
      {20000000000, "65353130", "77737706", "47863826"},
  };
  for (const Row& row : rows) {
    std::int64_t step = row.time / 30;
    EXPECT_EQ(totpCode(c, config("sha1", 8), sha1_key, step), row.sha1) << row.time;
    EXPECT_EQ(totpCode(c, config("sha256", 8), sha256_key, step), row.sha256) << row.time;
    EXPECT_EQ(totpCode(c, config("sha512", 8), sha512_key, step), row.sha512) << row.time;
  }
}

TEST(Totp, CodeLengthPadsWithZeros) {
  auto c = crypto();
  // 1111111109 gives 07081804 with 8 digits: the 6 last digits are 081804.
  EXPECT_EQ(totpCode(c, config("sha1", 6), "12345678901234567890", 1111111109 / 30), "081804");
  EXPECT_EQ(totpCode(c, config("sha1", 7), "12345678901234567890", 1111111109 / 30), "7081804");
  EXPECT_EQ(totpCode(c, config("sha1", 3), "12345678901234567890", 1111111109 / 30), "804");
  EXPECT_EQ(totpCode(c, config("md5", 6), "12345678901234567890", 1), "");
}

TEST(Totp, MatchAcceptsTheCurrentStepAndTheSkew) {
  auto c = crypto();
  const std::string key = "12345678901234567890";
  const UnixTime now = 1111111111;
  const std::int64_t step = now / 30;
  auto cfg = config("sha1", 6, 30, 1);
  EXPECT_EQ(totpMatch(c, cfg, key, totpCode(c, cfg, key, step), now, -1), step);
  EXPECT_EQ(totpMatch(c, cfg, key, totpCode(c, cfg, key, step - 1), now, -1), step - 1);
  EXPECT_EQ(totpMatch(c, cfg, key, totpCode(c, cfg, key, step + 1), now, -1), step + 1);
  EXPECT_EQ(totpMatch(c, cfg, key, totpCode(c, cfg, key, step - 2), now, -1), std::nullopt);
  EXPECT_EQ(totpMatch(c, cfg, key, totpCode(c, cfg, key, step + 2), now, -1), std::nullopt);

  auto wide = config("sha1", 6, 30, 2);
  EXPECT_EQ(totpMatch(c, wide, key, totpCode(c, wide, key, step - 2), now, -1), step - 2);
  EXPECT_EQ(totpMatch(c, wide, key, totpCode(c, wide, key, step + 2), now, -1), step + 2);
  EXPECT_EQ(totpMatch(c, wide, key, totpCode(c, wide, key, step + 3), now, -1), std::nullopt);

  auto none = config("sha1", 6, 30, 0);
  EXPECT_EQ(totpMatch(c, none, key, totpCode(c, none, key, step), now, -1), step);
  EXPECT_EQ(totpMatch(c, none, key, totpCode(c, none, key, step - 1), now, -1), std::nullopt);

  // The step boundaries follow time_step.
  auto minute = config("sha256", 8, 60, 0);
  EXPECT_EQ(totpMatch(c, minute, key, totpCode(c, minute, key, 2), 120, -1), 2);
  EXPECT_EQ(totpMatch(c, minute, key, totpCode(c, minute, key, 2), 179, -1), 2);
  EXPECT_EQ(totpMatch(c, minute, key, totpCode(c, minute, key, 2), 180, -1), std::nullopt);
}

TEST(Totp, MatchNeverAcceptsAStepAgain) {
  auto c = crypto();
  const std::string key = "12345678901234567890";
  const UnixTime now = 1234567890;
  const std::int64_t step = now / 30;
  auto cfg = config("sha1");
  std::string code = totpCode(c, cfg, key, step);
  ASSERT_EQ(totpMatch(c, cfg, key, code, now, -1), step);
  EXPECT_EQ(totpMatch(c, cfg, key, code, now, step), std::nullopt);
  EXPECT_EQ(totpMatch(c, cfg, key, code, now + 29, step), std::nullopt);
  // An older step inside the skew is not accepted after a newer one.
  EXPECT_EQ(totpMatch(c, cfg, key, totpCode(c, cfg, key, step - 1), now, step), std::nullopt);
  EXPECT_EQ(totpMatch(c, cfg, key, totpCode(c, cfg, key, step - 1), now, step - 2), step - 1);
  // The next step is still accepted.
  EXPECT_EQ(totpMatch(c, cfg, key, totpCode(c, cfg, key, step + 1), now + 30, step), step + 1);
}

TEST(Totp, MatchRejectsWrongCodes) {
  auto c = crypto();
  const std::string key = "12345678901234567890";
  auto cfg = config("sha1");
  std::string code = totpCode(c, cfg, key, 1000);
  EXPECT_EQ(totpMatch(c, cfg, key, code.substr(1), 30000, -1), std::nullopt);
  EXPECT_EQ(totpMatch(c, cfg, key, code + "0", 30000, -1), std::nullopt);
  EXPECT_EQ(totpMatch(c, cfg, key, "", 30000, -1), std::nullopt);
  EXPECT_EQ(totpMatch(c, cfg, "another key", code, 30000, -1), std::nullopt);
  std::string wrong = code;
  wrong[0] = wrong[0] == '9' ? '0' : static_cast<char>(wrong[0] + 1);
  EXPECT_EQ(totpMatch(c, cfg, key, wrong, 30000, -1), std::nullopt);
}

TEST(Totp, OtpauthUri) {
  EXPECT_EQ(otpauthUri("Acme Co", "alice@example.com", "JBSWY3DPEHPK3PXP", config("sha1")),
            "otpauth://totp/Acme%20Co:alice%40example.com?secret=JBSWY3DPEHPK3PXP"
            "&issuer=Acme%20Co&algorithm=SHA1&digits=6&period=30");
  EXPECT_EQ(
      otpauthUri("test-issuer", "John\xe2\x80\x99s Phone", "GEZDGNBV", config("sha512", 8, 60)),
      "otpauth://totp/test-issuer:John%E2%80%99s%20Phone?secret=GEZDGNBV"
      "&issuer=test-issuer&algorithm=SHA512&digits=8&period=60");
}

// ---- Sealed secrets ----

TEST(FactorCrypto, SealOpenRoundTrip) {
  auto c = crypto();
  for (std::string plain : {std::string(), std::string("x"), std::string(20, '\0'),
                            std::string("12345678901234567890123456789012")}) {
    std::string sealed = c.sealSecret(plain);
    EXPECT_EQ(sealed.size(), 1 + 8 + 12 + plain.size() + 16);
    EXPECT_EQ(sealed.find("12345678901234567890"), std::string::npos);
    auto opened = c.openSecret(sealed);
    ASSERT_TRUE(opened) << opened.error().message;
    EXPECT_EQ(*opened, plain);
  }
  EXPECT_NE(c.sealSecret("same"), c.sealSecret("same"));  // a fresh nonce each time
}

TEST(FactorCrypto, OpensWithThePreviousKeyAfterRotation) {
  OpenSslFactorCrypto before(kKeyA, "", kJwtKey);
  std::string old_sealed = before.sealSecret("seed under A");
  OpenSslFactorCrypto during(kKeyB, kKeyA, kJwtKey);
  EXPECT_EQ(during.openSecret(old_sealed).value(), "seed under A");
  std::string new_sealed = during.sealSecret("seed under B");
  EXPECT_EQ(during.openSecret(new_sealed).value(), "seed under B");
  // The key id names the key: a new seal is under B, and A alone cannot open it.
  EXPECT_EQ(new_sealed.substr(1, 8),
            OpenSslFactorCrypto(kKeyB, "", kJwtKey).sealSecret("x").substr(1, 8));
  EXPECT_NE(new_sealed.substr(1, 8), old_sealed.substr(1, 8));
  EXPECT_EQ(before.openSecret(new_sealed).error().kind, ErrorKind::kInternal);
  // After the rotation ends, what A sealed no longer opens.
  OpenSslFactorCrypto after(kKeyB, "", kJwtKey);
  EXPECT_EQ(after.openSecret(old_sealed).error().kind, ErrorKind::kInternal);
  EXPECT_EQ(after.openSecret(new_sealed).value(), "seed under B");
}

TEST(FactorCrypto, TamperingIsDetected) {
  auto c = crypto();
  std::string sealed = c.sealSecret("a totp seed of 20 b");
  for (std::size_t i = 0; i < sealed.size(); ++i) {
    std::string bad = sealed;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    auto opened = c.openSecret(bad);
    ASSERT_FALSE(opened) << "byte " << i;
    EXPECT_EQ(opened.error().kind, ErrorKind::kInternal);
  }
  EXPECT_FALSE(c.openSecret(sealed.substr(0, sealed.size() - 1)));
  EXPECT_FALSE(c.openSecret(sealed.substr(0, 36)));
  EXPECT_FALSE(c.openSecret(""));
}

// ---- ES256 ----

std::string base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(bytes.data()),
                          static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::string base64url(std::string_view bytes) {
  std::string out = base64(bytes);
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (char& c : out) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return out;
}

// An EC key made by OpenSSL, as a device SDK would make it.
class EcKey {
 public:
  explicit EcKey(const char* curve = "P-256") : key_(EVP_EC_gen(curve), EVP_PKEY_free) {}

  std::string spkiBase64() const {
    int len = i2d_PUBKEY(key_.get(), nullptr);
    std::string der(static_cast<std::size_t>(len), '\0');
    auto* p = reinterpret_cast<unsigned char*>(der.data());
    i2d_PUBKEY(key_.get(), &p);
    return base64(der);
  }

  std::string signDer(std::string_view message) const {
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key_.get());
    std::size_t len = 0;
    const auto* m = reinterpret_cast<const unsigned char*>(message.data());
    EVP_DigestSign(ctx.get(), nullptr, &len, m, message.size());
    std::string sig(len, '\0');
    EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, m,
                   message.size());
    sig.resize(len);
    return sig;
  }

  // The r||s form of a JWS signature (RFC 7518 §3.4).
  std::string signRaw(std::string_view message) const {
    std::string der = signDer(message);
    const auto* p = reinterpret_cast<const unsigned char*>(der.data());
    std::unique_ptr<ECDSA_SIG, decltype(&ECDSA_SIG_free)> sig(
        d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())), ECDSA_SIG_free);
    const BIGNUM *r = nullptr, *s = nullptr;
    ECDSA_SIG_get0(sig.get(), &r, &s);
    std::string raw(64, '\0');
    BN_bn2binpad(r, reinterpret_cast<unsigned char*>(raw.data()), 32);
    BN_bn2binpad(s, reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
    return raw;
  }

 private:
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key_;
};

TEST(FactorCrypto, RecognizesP256PublicKeys) {
  auto c = crypto();
  EcKey p256;
  EXPECT_TRUE(c.isP256PublicKey(p256.spkiBase64()));
  EXPECT_FALSE(c.isP256PublicKey(EcKey("P-384").spkiBase64()));
  EXPECT_FALSE(c.isP256PublicKey(""));
  EXPECT_FALSE(c.isP256PublicKey("not base64!"));
  EXPECT_FALSE(c.isP256PublicKey(base64("garbage that is not DER")));
  std::string spki = p256.spkiBase64();
  EXPECT_FALSE(c.isP256PublicKey(spki.substr(0, spki.size() - 8)));
  // A point off the curve: change the last byte of the Y coordinate.
  auto der = std::string(4 * spki.size(), '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(der.data()),
                          reinterpret_cast<const unsigned char*>(spki.data()),
                          static_cast<int>(spki.size()));
  der.resize(91);
  ASSERT_GE(n, 91);
  der[90] = static_cast<char>(der[90] ^ 1);
  EXPECT_FALSE(c.isP256PublicKey(base64(der)));
}

TEST(FactorCrypto, VerifiesEs256Signatures) {
  auto c = crypto();
  EcKey device;
  const std::string message = "YF0123456789abcdef0123456789abcdef";
  std::string der = device.signDer(message);
  EXPECT_TRUE(c.verifyEs256(device.spkiBase64(), message, base64(der)));
  EXPECT_TRUE(c.verifyEs256(device.spkiBase64(), message, base64(device.signRaw(message))));
  EXPECT_FALSE(c.verifyEs256(device.spkiBase64(), message + "x", base64(der)));
  EXPECT_FALSE(c.verifyEs256(EcKey().spkiBase64(), message, base64(der)));
  std::string bad = der;
  bad[bad.size() - 1] = static_cast<char>(bad[bad.size() - 1] ^ 1);
  EXPECT_FALSE(c.verifyEs256(device.spkiBase64(), message, base64(bad)));
  EXPECT_FALSE(c.verifyEs256(device.spkiBase64(), message, ""));
  EXPECT_FALSE(c.verifyEs256(device.spkiBase64(), message, "%%%"));
  EXPECT_FALSE(c.verifyEs256("", message, base64(der)));
}

std::string jws(const EcKey& key, std::string_view header, std::string_view payload) {
  std::string input = base64url(header) + "." + base64url(payload);
  return input + "." + base64url(key.signRaw(input));
}

TEST(FactorCrypto, VerifiesCompactJws) {
  auto c = crypto();
  EcKey device;
  const std::string payload = R"({"challenge":"YC0123","status":"approved"})";
  std::string token = jws(device, R"({"alg":"ES256","typ":"JWT","kid":"x"})", payload);
  auto verified = c.verifyJws(device.spkiBase64(), token);
  ASSERT_TRUE(verified) << verified.error().message;
  EXPECT_EQ(*verified, payload);

  // A modified payload, signed for the original, fails.
  std::size_t a = token.find('.'), b = token.rfind('.');
  std::string forged = token.substr(0, a + 1) +
                       base64url(R"({"challenge":"YC0123","status":"denied"})") + token.substr(b);
  EXPECT_EQ(c.verifyJws(device.spkiBase64(), forged).error().kind, ErrorKind::kInvalidArgument);
  // Another key, another algorithm, a DER signature, padding or a missing part all fail.
  EXPECT_FALSE(c.verifyJws(EcKey().spkiBase64(), token));
  EXPECT_FALSE(c.verifyJws(device.spkiBase64(), jws(device, R"({"alg":"HS256"})", payload)));
  EXPECT_FALSE(c.verifyJws(device.spkiBase64(), jws(device, R"({"typ":"JWT"})", payload)));
  EXPECT_FALSE(c.verifyJws(device.spkiBase64(), jws(device, "not json", payload)));
  std::string input = base64url(R"({"alg":"ES256"})") + "." + base64url(payload);
  EXPECT_TRUE(c.verifyJws(device.spkiBase64(), input + "." + base64url(device.signRaw(input))));
  EXPECT_FALSE(c.verifyJws(device.spkiBase64(), input + "." + base64url(device.signDer(input))));
  EXPECT_FALSE(c.verifyJws(device.spkiBase64(), input + "." + base64(device.signRaw(input)) + "="));
  EXPECT_FALSE(c.verifyJws(device.spkiBase64(), input));
  EXPECT_FALSE(c.verifyJws(device.spkiBase64(), token + ".x"));
  EXPECT_FALSE(c.verifyJws("", token));
}

// ---- Access tokens ----

TEST(FactorCrypto, JwtSignAndVerify) {
  auto c = crypto();
  const std::string claims = R"({"sub":"YE0123","exp":1700000100})";
  std::string token = c.signJwt(claims);
  EXPECT_EQ(token.substr(0, token.find('.')), base64url(R"({"alg":"HS256","typ":"JWT"})"));
  auto verified = c.verifyJwt(token, 1700000000);
  ASSERT_TRUE(verified) << verified.error().message;
  EXPECT_EQ(*verified, claims);
  EXPECT_TRUE(c.verifyJwt(token, 1700000099));
}

TEST(FactorCrypto, JwtExpiredOrTamperedIsUnauthenticated) {
  auto c = crypto();
  std::string token = c.signJwt(R"({"sub":"YE0123","exp":1700000100})");
  EXPECT_EQ(c.verifyJwt(token, 1700000100).error().kind, ErrorKind::kUnauthenticated);
  EXPECT_EQ(c.verifyJwt(token, 1800000000).error().kind, ErrorKind::kUnauthenticated);

  std::size_t a = token.find('.'), b = token.rfind('.');
  std::string forged =
      token.substr(0, a + 1) + base64url(R"({"sub":"YE0123","exp":1900000000})") + token.substr(b);
  EXPECT_EQ(c.verifyJwt(forged, 1700000000).error().kind, ErrorKind::kUnauthenticated);
  std::string bad_sig = token;
  bad_sig.back() = bad_sig.back() == 'A' ? 'B' : 'A';
  EXPECT_FALSE(c.verifyJwt(bad_sig, 1700000000));
  EXPECT_FALSE(OpenSslFactorCrypto(kKeyA, "", std::string(32, 'k')).verifyJwt(token, 1700000000));
  EXPECT_FALSE(c.verifyJwt(token.substr(0, b), 1700000000));
  EXPECT_FALSE(c.verifyJwt("", 1700000000));
  // Without `exp`, or with a non-numeric one, a token never authenticates.
  EXPECT_FALSE(c.verifyJwt(c.signJwt(R"({"sub":"YE0123"})"), 0));
  EXPECT_FALSE(c.verifyJwt(c.signJwt(R"({"exp":"1900000000"})"), 0));
  EXPECT_FALSE(c.verifyJwt(c.signJwt("not json"), 0));
}

// ---- Factor key files ----

void writeFile(const std::string& path, const std::string& content, mode_t mode) {
  std::ofstream(path, std::ios::binary) << content;
  ::chmod(path.c_str(), mode);
}

TEST(FactorCrypto, LoadFactorKeyFromFileOrEnvironment) {
  testing::TempDir dir;
  const std::string key = "0123456789abcdef0123456789ABCDEF";
  std::string hex64;
  for (unsigned char ch : key) {
    hex64.push_back("0123456789abcdef"[ch >> 4]);
    hex64.push_back("0123456789ABCDEF"[ch & 15]);
  }
  ASSERT_EQ(hex64.size(), 64u);

  writeFile(dir.file("hex"), hex64 + "\n", 0600);
  EXPECT_EQ(loadFactorKey(dir.file("hex"), "").value(), key);
  writeFile(dir.file("raw"), key, 0600);
  EXPECT_EQ(loadFactorKey(dir.file("raw"), "ignored").value(), key);
  writeFile(dir.file("b64"), base64(key) + "\n", 0400);
  EXPECT_EQ(loadFactorKey(dir.file("b64"), "").value(), key);
  writeFile(dir.file("b64url"), base64url(std::string(32, '\xfb')), 0600);
  EXPECT_EQ(loadFactorKey(dir.file("b64url"), "").value(), std::string(32, '\xfb'));

  EXPECT_EQ(loadFactorKey("", hex64).value(), key);
  EXPECT_EQ(loadFactorKey("", base64(key)).value(), key);
  EXPECT_EQ(loadFactorKey("", key).value(), key);
}

TEST(FactorCrypto, LoadFactorKeyRefusesBadKeysAndOpenFiles) {
  testing::TempDir dir;
  std::string hex64(64, 'a');
  writeFile(dir.file("open"), hex64, 0644);
  auto open = loadFactorKey(dir.file("open"), "");
  ASSERT_FALSE(open);
  EXPECT_EQ(open.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_NE(open.error().message.find("chmod 600"), std::string::npos);
  writeFile(dir.file("group"), hex64, 0640);
  EXPECT_FALSE(loadFactorKey(dir.file("group"), ""));

  writeFile(dir.file("short"), std::string(62, 'a'), 0600);
  auto short_key = loadFactorKey(dir.file("short"), "");
  ASSERT_FALSE(short_key);
  EXPECT_EQ(short_key.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_NE(short_key.error().message.find("32-byte"), std::string::npos);
  writeFile(dir.file("nothex"), std::string(63, 'a') + "g", 0600);
  EXPECT_FALSE(loadFactorKey(dir.file("nothex"), ""));
  writeFile(dir.file("b64-16"), base64(std::string(16, 'x')), 0600);
  EXPECT_FALSE(loadFactorKey(dir.file("b64-16"), ""));

  EXPECT_EQ(loadFactorKey(dir.file("missing"), "").error().kind, ErrorKind::kInvalidArgument);
  EXPECT_EQ(loadFactorKey("", "").error().kind, ErrorKind::kInvalidArgument);
  EXPECT_EQ(loadFactorKey("", "too short").error().kind, ErrorKind::kInvalidArgument);
}

TEST(FactorCrypto, CreateFactorKeyFileWritesAPrivateHexKey) {
  testing::TempDir dir;
  testing::FakeRandom random;
  auto key = createFactorKeyFile(dir.file("factor.key"), random);
  ASSERT_TRUE(key) << key.error().message;
  EXPECT_EQ(key->size(), 32u);
  struct stat st {};
  ASSERT_EQ(::stat(dir.file("factor.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::ifstream in(dir.file("factor.key"));
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content.size(), 65u);
  EXPECT_EQ(loadFactorKey(dir.file("factor.key"), "").value(), *key);
  // An existing key is never overwritten.
  EXPECT_FALSE(createFactorKeyFile(dir.file("factor.key"), random));
  EXPECT_EQ(loadFactorKey(dir.file("factor.key"), "").value(), *key);
}

}  // namespace
}  // namespace verifyd
