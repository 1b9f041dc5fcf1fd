#pragma once
// Decode -> core -> encode for every route. No sockets: http/ adapts Beast to this.
#include <optional>
#include <string>

#include "verifyd/api/response.h"
#include "verifyd/core/accounts.h"
#include "verifyd/core/factors.h"
#include "verifyd/core/ports/delivery.h"
#include "verifyd/core/protection.h"
#include "verifyd/core/rate_limits.h"
#include "verifyd/core/service_registry.h"
#include "verifyd/core/verifier.h"
#include "verifyd/core/window_limiter.h"

namespace verifyd {

struct RouterOptions {
  std::string public_url;  // no trailing slash
  bool dev_outbox = true;
  // Failed authentication per client address within `auth_failure_window` seconds: past the
  // first threshold each 401 is held back (1 s more per failure, at most 5 s); at the second,
  // the address is refused (429) until failures leave the window. Other addresses are unaffected.
  int auth_failures_before_delay = 5;
  int auth_failures_before_refusal = 20;
  int auth_failure_window = 300;
};

class Router {
 public:
  Router(Accounts& accounts, ServiceRegistry& services, RateLimitRegistry& rate_limits,
         Protection& protection, Verifier& verifier, Store& store, const PhoneNumbers& phones,
         Clock& clock, RouterOptions options, Delivery* delivery = nullptr,
         Counters* counters = nullptr, FactorService* factors = nullptr);
  // Thread-safe. Never throws: anything unexpected becomes a 500 envelope. Requests that write
  // a verification complete later, on the Verifier's executor; the rest before returning.
  void handle(const ApiRequest& request, Respond respond);
  // Blocking form, for tests.
  ApiResponse handle(const ApiRequest& request);

 private:
  struct Call;
  // Authenticates and decodes; a response when the request ends there.
  std::optional<ApiResponse> prepare(Call& call);
  void route(Call& call, Respond& respond);
  ApiResponse services(Call& call);
  ApiResponse service(Call& call, const std::string& sid);
  void verifications(Call& call, const std::string& service_sid, Respond respond);
  void verification(Call& call, const std::string& service_sid, const std::string& key,
                    Respond respond);
  void verificationCheck(Call& call, const std::string& service_sid, Respond respond);
  ApiResponse devMessages(Call& call);
  ApiResponse callback(Call& call);
  ApiResponse attempts(Call& call);
  ApiResponse attempt(Call& call, const std::string& sid);
  ApiResponse attemptsSummary(Call& call);
  ApiResponse templates(Call& call);
  ApiResponse messagingConfigs(Call& call, const std::string& service_sid);
  ApiResponse messagingConfig(Call& call, const std::string& service_sid,
                              const std::string& country);
  ApiResponse lookup(Call& call, const std::string& number);
  ApiResponse safeList(Call& call);
  ApiResponse safeNumber(Call& call, const std::string& number);
  ApiResponse geoPermissions(Call& call);
  ApiResponse fraudBlocks(Call& call);
  ApiResponse fraudBlock(Call& call, const std::string& prefix);
  ApiResponse rateLimits(Call& call, const std::string& service_sid);
  ApiResponse rateLimit(Call& call, const std::string& service_sid, const std::string& sid);
  ApiResponse buckets(Call& call, const std::string& service_sid, const std::string& limit_sid);
  ApiResponse bucket(Call& call, const std::string& service_sid, const std::string& limit_sid,
                     const std::string& sid);
  // Factors (null factors_: 501). A device's access token reaches only `deviceAllowed` routes.
  bool deviceAllowed(const Call& call) const;
  ApiResponse entities(Call& call, const std::string& service_sid);
  ApiResponse entity(Call& call, const std::string& service_sid, const std::string& identity);
  ApiResponse factors(Call& call, const std::string& service_sid, const std::string& identity);
  ApiResponse factor(Call& call, const std::string& service_sid, const std::string& identity,
                     const std::string& sid);
  ApiResponse challenges(Call& call, const std::string& service_sid, const std::string& identity);
  ApiResponse challenge(Call& call, const std::string& service_sid, const std::string& identity,
                        const std::string& sid);
  ApiResponse notifications(Call& call, const std::string& service_sid, const std::string& identity,
                            const std::string& challenge_sid);
  ApiResponse accessTokens(Call& call, const std::string& service_sid);
  ApiResponse accessToken(Call& call, const std::string& service_sid, const std::string& sid);
  ApiResponse webhooks(Call& call, const std::string& service_sid);
  ApiResponse webhook(Call& call, const std::string& service_sid, const std::string& sid);

  Accounts& accounts_;
  ServiceRegistry& services_;
  RateLimitRegistry& rate_limits_;
  Protection& protection_;
  const PhoneNumbers& phones_;
  Verifier& verifier_;
  Store& store_;
  Delivery* delivery_;
  Clock& clock_;
  RouterOptions options_;
  MemoryCounters own_counters_;  // when none are given
  Counters& auth_failures_;
  FactorService* factors_;
};

}  // namespace verifyd
