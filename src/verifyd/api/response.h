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
  std::string client_address;  // the peer's IP address, for per-client limits
};

struct ApiResponse {
  ApiResponse() = default;
  ApiResponse(int status_, std::string body_,
              std::vector<std::pair<std::string, std::string>> headers_ = {})
      : status(status_), body(std::move(body_)), headers(std::move(headers_)) {}

  int status = 200;
  std::string body;  // JSON, or empty (204)
  std::vector<std::pair<std::string, std::string>> headers;
  int delay_ms = 0;  // hold the response this long (slows repeated failed authentication)
};

// Delivers a response; called exactly once per request, from any thread.
using Respond = std::function<void(ApiResponse)>;

}  // namespace verifyd
