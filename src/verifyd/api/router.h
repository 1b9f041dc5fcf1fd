#pragma once
// Decode -> core -> encode for every route. No sockets: http/ adapts Beast to this.
#include <string>

#include "verifyd/api/response.h"
#include "verifyd/core/accounts.h"
#include "verifyd/core/service_registry.h"
#include "verifyd/core/verifier.h"

namespace verifyd {

struct RouterOptions {
  std::string public_url;  // no trailing slash
  bool dev_outbox = true;
};

class Router {
 public:
  Router(Accounts& accounts, ServiceRegistry& services, Verifier& verifier, OutboxStore& outbox,
         RouterOptions options);
  // Thread-safe. Never throws: anything unexpected becomes a 500 envelope.
  ApiResponse handle(const ApiRequest& request);

 private:
  struct Call;
  ApiResponse route(Call& call);
  ApiResponse services(Call& call);
  ApiResponse service(Call& call, const std::string& sid);
  ApiResponse verifications(Call& call, const std::string& service_sid);
  ApiResponse verification(Call& call, const std::string& service_sid, const std::string& key);
  ApiResponse verificationCheck(Call& call, const std::string& service_sid);
  ApiResponse devMessages(Call& call);

  Accounts& accounts_;
  ServiceRegistry& services_;
  Verifier& verifier_;
  OutboxStore& outbox_;
  RouterOptions options_;
};

}  // namespace verifyd
