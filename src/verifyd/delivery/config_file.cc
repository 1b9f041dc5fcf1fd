// The delivery part of verifyd's TOML config file: [delivery] and [[provider]] tables.
#include <toml++/toml.h>

#include "verifyd/delivery/delivery_service.h"

namespace verifyd {
namespace {

// Every setting as text: strings as they are, numbers and booleans printed, inline tables
// flattened to "table.key".
void flatten(const toml::table& t, const std::string& prefix,
             std::map<std::string, std::string>& out) {
  for (const auto& [key, node] : t) {
    const std::string name = prefix + std::string(key.str());
    if (auto s = node.value<std::string>(); s && node.is_string()) {
      out[name] = *s;
    } else if (node.is_integer()) {
      out[name] = std::to_string(*node.value<std::int64_t>());
    } else if (node.is_floating_point()) {
      out[name] = std::to_string(*node.value<double>());
    } else if (node.is_boolean()) {
      out[name] = *node.value<bool>() ? "true" : "false";
    } else if (auto sub = node.as_table()) {
      flatten(*sub, name + ".", out);
    }
  }
}

Result<std::vector<std::string>> strings(const toml::node* n, const std::string& what) {
  std::vector<std::string> out;
  if (!n) return out;
  auto arr = n->as_array();
  if (!arr) return fail(Error::invalid(what, "must be an array of strings"));
  for (const auto& item : *arr) {
    auto s = item.value<std::string>();
    if (!s) return fail(Error::invalid(what, "must be an array of strings"));
    out.push_back(*s);
  }
  return out;
}

}  // namespace

Result<DeliveryOptions> loadDeliveryConfig(const std::string& path) {
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    std::string where = e.source().begin ? " at line " + std::to_string(e.source().begin.line) : "";
    return fail(Error::invalid("config", path + where + ": " + std::string(e.description())));
  }
  DeliveryOptions o;
  if (auto d = root["delivery"].as_table()) {
    auto integer = [&](const char* key, int& field, int min, int max) -> Status {
      auto n = (*d)[key];
      if (!n) return {};
      auto v = n.value<std::int64_t>();
      if (!v || *v < min || *v > max)
        return fail(Error::invalid(
            std::string("delivery.") + key,
            "must be an integer from " + std::to_string(min) + " to " + std::to_string(max)));
      field = static_cast<int>(*v);
      return {};
    };
    for (auto st :
         {integer("workers", o.workers, 1, 256), integer("max_tries", o.max_tries, 1, 100),
          integer("retry_initial_ms", o.retry_initial_ms, 1, 3600000),
          integer("retry_max_ms", o.retry_max_ms, 1, 86400000),
          integer("lease_ms", o.lease_ms, 100, 86400000), integer("poll_ms", o.poll_ms, 10, 60000),
          integer("event_max_tries", o.event_max_tries, 1, 100),
          integer("event_retry_initial_ms", o.event_retry_initial_ms, 1, 3600000),
          integer("event_retry_max_ms", o.event_retry_max_ms, 1, 86400000),
          integer("event_workers", o.event_workers, 1, 256),
          integer("event_timeout_ms", o.event_timeout_ms, 1, 600000)})
      if (!st) return fail(st.error());
  }
  if (auto providers = root["provider"].as_array()) {
    for (const auto& node : *providers) {
      auto t = node.as_table();
      if (!t) return fail(Error::invalid("provider", "[[provider]] entries must be tables"));
      ProviderConfig c;
      c.name = (*t)["name"].value_or(std::string());
      c.type = (*t)["type"].value_or(std::string());
      if (c.name.empty()) return fail(Error::invalid("provider.name", "every provider needs one"));
      auto channels = strings((*t)["channels"].node(), "provider.channels");
      if (!channels) return fail(channels.error());
      c.channels = std::move(*channels);
      if (c.channels.empty())
        return fail(Error::invalid("provider.channels", "provider '" + c.name + "' has none"));
      for (const auto& ch : c.channels)
        if (ch != "sms" && ch != "call" && ch != "email" && ch != "whatsapp" && ch != "push")
          return fail(Error::invalid("provider.channels", "unknown channel '" + ch + "'"));
      auto countries = strings((*t)["countries"].node(), "provider.countries");
      if (!countries) return fail(countries.error());
      c.countries = std::move(*countries);
      if (auto ms = (*t)["timeout_ms"].value<std::int64_t>()) {
        if (*ms < 1 || *ms > 600000)
          return fail(Error::invalid("provider.timeout_ms", "1 to 600000"));
        c.timeout_ms = static_cast<int>(*ms);
      }
      toml::table rest = *t;
      for (const char* k : {"name", "type", "channels", "countries", "timeout_ms"}) rest.erase(k);
      flatten(rest, "", c.settings);
      o.providers.push_back(std::move(c));
    }
  }
  return o;
}

}  // namespace verifyd
