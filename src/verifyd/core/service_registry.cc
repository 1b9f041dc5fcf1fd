#include "verifyd/core/service_registry.h"

#include "verifyd/common/sid.h"

namespace verifyd {

ServiceRegistry::ServiceRegistry(ServiceStore& store, Clock& clock, Random& random)
    : store_(store), clock_(clock), random_(random) {}

Result<Service> ServiceRegistry::create(const std::string& account_sid, ServiceSettings settings) {
  if (settings.friendly_name.empty()) return fail(Error::missing("FriendlyName"));
  if (!settings.totp_issuer) settings.totp_issuer = settings.friendly_name;
  Service s;
  s.sid = makeSid("VA", random_);
  s.account_sid = account_sid;
  s.settings = std::move(settings);
  s.date_created = s.date_updated = clock_.now();
  if (auto st = store_.createService(s); !st) return fail(st.error());
  return s;
}

Result<Service> ServiceRegistry::fetch(const std::string& account_sid, const std::string& sid) {
  auto found = store_.getService(account_sid, sid);
  if (!found) return fail(found.error());
  if (!*found) return fail(Error::notFound());
  return std::move(**found);
}

Result<Page<Service>> ServiceRegistry::list(const std::string& account_sid, PageCursor cursor,
                                            int page_size) {
  return store_.listServices(account_sid, cursor, page_size);
}

Result<Service> ServiceRegistry::update(const std::string& account_sid, const std::string& sid,
                                        const std::function<Status(ServiceSettings&)>& change) {
  const UnixTime now = clock_.now();
  return store_.updateService(account_sid, sid, [&](Service& s) -> Status {
    if (auto st = change(s.settings); !st) return st;
    s.date_updated = now;
    return {};
  });
}

Status ServiceRegistry::remove(const std::string& account_sid, const std::string& sid) {
  return store_.deleteService(account_sid, sid);
}

}  // namespace verifyd
