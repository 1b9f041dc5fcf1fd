#include "verifyd/http/server.h"

#include <spdlog/spdlog.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <optional>
#include <thread>
#include <vector>

#include "verifyd/api/twilio/errors.h"

namespace verifyd {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

using Response = http::response<http::string_body>;

Response toBeast(ApiResponse api, unsigned version, bool keep_alive) {
  Response res{static_cast<http::status>(api.status), version};
  res.set(http::field::server, "verifyd");
  for (auto& [name, value] : api.headers) res.set(name, value);
  if (api.status != 204) {
    res.set(http::field::content_type, "application/json; charset=utf-8");
    res.body() = std::move(api.body);
  }
  res.keep_alive(keep_alive);
  res.prepare_payload();
  return res;
}

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const HttpServerOptions& options, const Handler& handler)
      : stream_(std::move(socket)),
        timer_(stream_.get_executor()),
        options_(options),
        handler_(handler) {
    beast::error_code ec;
    auto peer = stream_.socket().remote_endpoint(ec);
    if (!ec) client_address_ = peer.address().to_string();
  }

  void start() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->readHeader(); });
  }

 private:
  void readHeader() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(options_.header_limit));
    parser_->body_limit(options_.body_limit);
    stream_.expires_after(std::chrono::seconds(options_.idle_timeout_seconds));
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->onHeader(ec); });
  }

  void onHeader(beast::error_code ec) {
    if (ec) return onError(ec);
    auto& req = parser_->get();
    // curl and others wait for `100 Continue` before sending a large body.
    if (beast::iequals(req[http::field::expect], "100-continue")) {
      auto cont = std::make_shared<http::response<http::empty_body>>(http::status::continue_,
                                                                     req.version());
      http::async_write(stream_, *cont,
                        [self = shared_from_this(), cont](beast::error_code ec2, std::size_t) {
                          if (ec2) return self->close();
                          self->readBody();
                        });
      return;
    }
    readBody();
  }

  void readBody() {
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->onRead(ec); });
  }

  void onError(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == beast::error::timeout ||
        ec == asio::error::connection_reset || ec == asio::error::operation_aborted)
      return close();
    // Everything else is a request we cannot parse: answer it, then close the connection since
    // the stream position is unknown.
    Error err = Error::invalid("malformed HTTP request");
    if (ec == http::error::body_limit) err = Error::of(ErrorKind::kPayloadTooLarge);
    if (ec == http::error::header_limit) err = Error::invalid("request header too large");
    reply(twilio::renderError(err, ""), 11, false);
  }

  void onRead(beast::error_code ec) {
    if (ec) return onError(ec);
    auto& req = parser_->get();
    ApiRequest api;
    api.method = std::string(req.method_string());
    api.target = std::string(req.target());
    api.content_type = std::string(req[http::field::content_type]);
    api.authorization = std::string(req[http::field::authorization]);
    api.body = std::move(req.body());
    api.client_address = client_address_;
    const unsigned version = req.version();
    const bool keep_alive = req.keep_alive();
    const bool head = req.method() == http::verb::head;
    // The response may come from another thread (a store completion): hop back onto this
    // connection's strand before touching the stream.
    Respond respond = [self = shared_from_this(), version, keep_alive, head](ApiResponse out) {
      asio::post(self->stream_.get_executor(),
                 [self, out = std::move(out), version, keep_alive, head]() mutable {
                   if (head) out.body.clear();
                   self->reply(std::move(out), version, keep_alive);
                 });
    };
    try {
      handler_(api, std::move(respond));
    } catch (const std::exception& e) {
      spdlog::error("handler failed: {}", e.what());
      reply(twilio::renderError(Error::internal(e.what()), ""), version, false);
    }
  }

  void reply(ApiResponse api, unsigned version, bool keep_alive) {
    if (api.delay_ms > 0) {
      // Held back without holding a thread: the timer completes on this connection's strand.
      int delay = api.delay_ms;
      api.delay_ms = 0;
      timer_.expires_after(std::chrono::milliseconds(delay));
      timer_.async_wait([self = shared_from_this(), api = std::move(api), version,
                         keep_alive](beast::error_code) mutable {
        self->reply(std::move(api), version, keep_alive);
      });
      return;
    }
    auto res = std::make_shared<Response>(toBeast(std::move(api), version, keep_alive));
    http::async_write(
        stream_, *res,
        [self = shared_from_this(), res, keep_alive](beast::error_code ec, std::size_t) {
          if (ec || !keep_alive) return self->close();
          self->readHeader();
        });
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.close();
  }

  beast::tcp_stream stream_;
  asio::steady_timer timer_;
  std::string client_address_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  const HttpServerOptions& options_;
  const Handler& handler_;
};

}  // namespace

struct HttpServer::Impl {
  HttpServerOptions options;
  Handler handler;
  asio::io_context ioc;
  tcp::acceptor acceptor{ioc};
  std::vector<std::thread> threads;
  bool stopped = false;

  void accept() {
    acceptor.async_accept(asio::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
      if (ec) {
        if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
        spdlog::warn("accept failed: {}", ec.message());
      } else {
        beast::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        std::make_shared<Session>(std::move(socket), options, handler)->start();
      }
      accept();
    });
  }
};

HttpServer::HttpServer(HttpServerOptions options, Handler handler) : impl_(new Impl) {
  impl_->options = std::move(options);
  impl_->handler = std::move(handler);
}

HttpServer::~HttpServer() { stop(); }

Result<std::uint16_t> HttpServer::listen() {
  beast::error_code ec;
  auto address = asio::ip::make_address(impl_->options.host, ec);
  if (ec) return fail(Error::invalid("listen", "bad address " + impl_->options.host));
  tcp::endpoint endpoint(address, impl_->options.port);
  auto& acc = impl_->acceptor;
  acc.open(endpoint.protocol(), ec);
  if (!ec) acc.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acc.bind(endpoint, ec);
  if (!ec) acc.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    return fail(Error::internal("cannot listen on " + impl_->options.host + ":" +
                                std::to_string(impl_->options.port) + ": " + ec.message()));
  return acc.local_endpoint().port();
}

void HttpServer::run() {
  impl_->accept();
  int n = std::max(1, impl_->options.threads);
  for (int i = 0; i < n; ++i) impl_->threads.emplace_back([this] { impl_->ioc.run(); });
}

void HttpServer::post(std::function<void()> fn) { asio::post(impl_->ioc, std::move(fn)); }

void HttpServer::stop() {
  if (!impl_ || impl_->stopped) return;
  impl_->stopped = true;
  asio::post(impl_->ioc, [this] {
    beast::error_code ignored;
    impl_->acceptor.close(ignored);
  });
  impl_->ioc.stop();
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
}

}  // namespace verifyd
