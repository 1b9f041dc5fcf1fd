#include "verifyd/core/accounts.h"

#include "verifyd/common/sid.h"

namespace verifyd {

Accounts::Accounts(AccountStore& store, const Keyring& keyring, Clock& clock, Random& random)
    : store_(store), keyring_(keyring), clock_(clock), random_(random) {}

Result<NewCredential> Accounts::createAccount(std::string friendly_name, std::string sid,
                                              std::string token) {
  if (sid.empty()) sid = makeSid("AC", random_);
  if (!isSid(sid, "AC")) return fail(Error::invalid("AccountSid", "AC followed by 32 hex digits"));
  if (token.empty()) token = toHex(random_.bytes(16));
  if (token.size() < 16) return fail(Error::invalid("AuthToken", "at least 16 characters"));
  Account a{sid, std::move(friendly_name), keyring_.mac("auth", token), keyring_.seal(token),
            clock_.now()};
  if (auto st = store_.createAccount(a); !st) return fail(st.error());
  return NewCredential{sid, token};
}

Result<NewCredential> Accounts::createApiKey(const std::string& account_sid,
                                             std::string friendly_name) {
  auto account = store_.getAccount(account_sid);
  if (!account) return fail(account.error());
  if (!*account) return fail(Error::notFound("no account " + account_sid));
  std::string secret = toHex(random_.bytes(16));
  ApiKey k{makeSid("SK", random_), account_sid, std::move(friendly_name),
           keyring_.mac("auth", secret), clock_.now()};
  if (auto st = store_.createApiKey(k); !st) return fail(st.error());
  return NewCredential{k.sid, secret};
}

Result<std::string> Accounts::authToken(const std::string& account_sid) {
  auto account = store_.getAccount(account_sid);
  if (!account) return fail(account.error());
  if (!*account) return fail(Error::notFound("no account " + account_sid));
  return keyring_.open((*account)->auth_token_sealed);
}

Result<std::string> Accounts::authenticate(std::string_view username, std::string_view password) {
  auto cred = store_.findCredential(username);
  if (!cred) return fail(cred.error());
  // Compute the MAC even for unknown users so that timing does not reveal which SIDs exist.
  std::string presented = keyring_.mac("auth", password);
  if (!*cred || !keyring_.equal(presented, (*cred)->secret_mac))
    return fail(Error::of(ErrorKind::kUnauthenticated, "Authenticate"));
  return (*cred)->account_sid;
}

}  // namespace verifyd
