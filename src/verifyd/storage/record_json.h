#pragma once
// How both stores (SQLite, PostgreSQL) serialise the parts of a record they keep as JSON text:
// a service's settings and a verification's send attempts. One format, so that data moves
// between the backends unchanged.
#include <string>
#include <vector>

#include "verifyd/core/model.h"

namespace verifyd::storage {

std::string encodeSettings(const ServiceSettings& s);
ServiceSettings decodeSettings(const std::string& text);
std::string encodeAttempts(const std::vector<SendAttempt>& attempts);
std::vector<SendAttempt> decodeAttempts(const std::string& text);

}  // namespace verifyd::storage
