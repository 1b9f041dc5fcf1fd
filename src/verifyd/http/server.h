#pragma once
// The HTTP/1.1 front end (Boost.Beast). This header is Beast-free on purpose: only server.cc
// pays Beast's compile cost.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "verifyd/api/response.h"
#include "verifyd/common/result.h"

namespace verifyd {

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;  // 0 = any free port
  int threads = 2;            // I/O threads; writes complete asynchronously, so one per core
  std::size_t body_limit = 64 * 1024;
  std::size_t header_limit = 16 * 1024;
  int idle_timeout_seconds = 60;
};

// Handles one request; calls the Respond it is given exactly once, from any thread.
using Handler = std::function<void(const ApiRequest&, Respond)>;

class HttpServer {
 public:
  HttpServer(HttpServerOptions options, Handler handler);
  ~HttpServer();
  // Binds and listens; returns the bound port. Connections wait in the backlog until `run`.
  Result<std::uint16_t> listen();
  // Starts the worker threads that accept and serve.
  void run();
  // Stops accepting, closes connections and joins the threads. Idempotent.
  void stop();
  // Runs `fn` on one of the server's I/O threads.
  void post(std::function<void()> fn);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace verifyd
