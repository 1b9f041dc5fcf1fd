// verifyd_totp_tool SECRET_BASE32 ALG DIGITS PERIOD TIME: prints verifyd's TOTP code, for
// test/unit/oathtool_check.sh to compare with oathtool's.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "verifyd/common/base32.h"
#include "verifyd/core/totp.h"
#include "verifyd/crypto/factor_crypto.h"

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: %s SECRET_BASE32 sha1|sha256|sha512 DIGITS PERIOD TIME\n",
                 argv[0]);
    return 2;
  }
  auto secret = verifyd::base32Decode(argv[1]);
  if (!secret) {
    std::fprintf(stderr, "not base32: %s\n", argv[1]);
    return 2;
  }
  verifyd::TotpConfig config;
  config.alg = argv[2];
  config.code_length = std::atoi(argv[3]);
  config.time_step = std::atoi(argv[4]);
  long long time = std::atoll(argv[5]);
  if (config.time_step <= 0) return 2;
  verifyd::OpenSslFactorCrypto crypto(std::string(32, 'f'), "", std::string(32, 'j'));
  std::string code = verifyd::totpCode(crypto, config, *secret, time / config.time_step);
  if (code.empty()) return 2;
  std::printf("%s\n", code.c_str());
  return 0;
}
