#pragma once
// The API's view of HTTP: plain values, no sockets, so handlers run in tests without a server.
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace verifyd {

struct ApiRequest {
  std::string method;  // upper case: GET, POST, DELETE, …
  std::string target;  // path and query as received
  std::string content_type;
  std::string authorization;
  std::string body;
};

struct ApiResponse {
  int status = 200;
  std::string body;  // JSON, or empty (204)
  std::vector<std::pair<std::string, std::string>> headers;
};

// Delivers a response; called exactly once per request, from any thread.
using Respond = std::function<void(ApiResponse)>;

}  // namespace verifyd
