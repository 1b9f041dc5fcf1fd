#pragma once
// A small blocking HTTP client over libcurl for the providers. One easy handle per call;
// thread-safe.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace verifyd {

struct HttpRequest {
  std::string method = "GET";  // GET or POST
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string basic_user, basic_password;  // HTTP Basic when basic_user is set
  int timeout_ms = 10000;
  int connect_timeout_ms = 3000;
};

struct HttpResponse {
  int status = 0;  // 0 when no response arrived
  std::string body;
  std::string error;  // libcurl's message when the transfer failed
  // True when the transfer failed before any byte of the request could have reached the server
  // (DNS, connection refused, connect timeout): a retry cannot duplicate anything.
  bool not_sent = false;
};

HttpResponse httpCall(const HttpRequest& request);

// application/x-www-form-urlencoded encoding of one value (RFC 3986 unreserved kept).
std::string urlEncode(std::string_view value);
// name=value&... with every value encoded.
std::string formEncode(const std::vector<std::pair<std::string, std::string>>& fields);

}  // namespace verifyd
