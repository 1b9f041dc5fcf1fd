#pragma once
// Accounts, API keys and authentication of API requests.
#include <optional>
#include <string>

#include "verifyd/common/clock.h"
#include "verifyd/common/random.h"
#include "verifyd/common/result.h"
#include "verifyd/core/ports/keyring.h"
#include "verifyd/core/ports/stores.h"

namespace verifyd {

struct NewCredential {
  std::string sid;     // AC… or SK…
  std::string secret;  // the auth token or key secret, shown once
};

class Accounts {
 public:
  Accounts(AccountStore& store, const Keyring& keyring, Clock& clock, Random& random);

  // Creates an account; `sid` and `token` are generated when empty.
  Result<NewCredential> createAccount(std::string friendly_name, std::string sid = {},
                                      std::string token = {});
  // Creates an API key for an existing account (kNotFound otherwise).
  Result<NewCredential> createApiKey(const std::string& account_sid, std::string friendly_name);
  // The account's auth token, read back from its sealed copy.
  Result<std::string> authToken(const std::string& account_sid);
  // The account SID the credential belongs to; kUnauthenticated otherwise. Compares the
  // secret's HMAC in constant time.
  Result<std::string> authenticate(std::string_view username, std::string_view password);

 private:
  AccountStore& store_;
  const Keyring& keyring_;
  Clock& clock_;
  Random& random_;
};

}  // namespace verifyd
