#pragma once
// Service use cases. Parameter decoding and range checks happen in the API layer, which hands
// over complete settings; this owns identity, ownership and timestamps.
#include <functional>
#include <string>

#include "verifyd/common/clock.h"
#include "verifyd/common/random.h"
#include "verifyd/common/result.h"
#include "verifyd/core/ports/stores.h"

namespace verifyd {

class ServiceRegistry {
 public:
  ServiceRegistry(ServiceStore& store, Clock& clock, Random& random);

  Result<Service> create(const std::string& account_sid, ServiceSettings settings);
  Result<Service> fetch(const std::string& account_sid, const std::string& sid);
  Result<Page<Service>> list(const std::string& account_sid, PageCursor cursor, int page_size);
  // `change` edits the stored settings; it runs atomically with the write.
  Result<Service> update(const std::string& account_sid, const std::string& sid,
                         const std::function<Status(ServiceSettings&)>& change);
  Status remove(const std::string& account_sid, const std::string& sid);

 private:
  ServiceStore& store_;
  Clock& clock_;
  Random& random_;
};

}  // namespace verifyd
