// The floor of the benchmark: the least work an HTTP server built on the same stack as verifyd
// (Boost.Beast over Boost.Asio) can do per request. It answers every request, whatever its method
// and path, with 200 and one fixed JSON body of BODY_BYTES bytes (the size of a verifyd
// verification response, measured by bench/run.sh), on keep-alive connections.
//
//   g++ -O2 -std=c++20 -pthread floor_server.cc -o floor_server
//   floor_server PORT BODY_BYTES [THREADS=2]      (PORT 0 = any free port)
//
// Once it listens it prints `FLOOR_URL=http://127.0.0.1:PORT` on stdout. SIGTERM/SIGINT stop it.
// Boost 1.74's asio/awaitable.hpp uses std::exchange without including <utility> (C++20), so
// <utility> comes first, fenced off from clang-format's include sorting.
// clang-format off
#include <utility>
// clang-format on

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

// A JSON object of exactly `size` bytes, shaped like a verification.
std::string makeBody(std::size_t size) {
  std::string head =
      R"({"sid":"VE00000000000000000000000000000000","status":"pending","padding":")";
  std::string tail = R"("})";
  if (size < head.size() + tail.size()) size = head.size() + tail.size();
  return head + std::string(size - head.size() - tail.size(), 'x') + tail;
}

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const std::string& body) : stream_(std::move(socket)), body_(body) {}

  void start() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read(); });
  }

 private:
  void read() {
    req_ = {};
    stream_.expires_after(std::chrono::seconds(60));
    http::async_read(
        stream_, buffer_, req_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->onRead(ec); });
  }

  void onRead(beast::error_code ec) {
    if (ec) return close();
    res_ = http::response<http::string_body>{http::status::ok, req_.version()};
    res_.set(http::field::server, "floor");
    res_.set(http::field::content_type, "application/json; charset=utf-8");
    res_.body() = body_;
    res_.keep_alive(req_.keep_alive());
    res_.prepare_payload();
    http::async_write(stream_, res_,
                      [self = shared_from_this()](beast::error_code ec2, std::size_t) {
                        if (ec2 || !self->res_.keep_alive()) return self->close();
                        self->read();
                      });
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> req_;
  http::response<http::string_body> res_;
  const std::string& body_;
};

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  Listener(asio::io_context& ioc, tcp::endpoint endpoint, const std::string& body)
      : ioc_(ioc), acceptor_(asio::make_strand(ioc)), body_(body) {
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen(asio::socket_base::max_listen_connections);
  }

  unsigned short port() const { return acceptor_.local_endpoint().port(); }

  void accept() {
    acceptor_.async_accept(asio::make_strand(ioc_),
                           [self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
                             if (!ec) {
                               socket.set_option(tcp::no_delay(true));
                               std::make_shared<Session>(std::move(socket), self->body_)->start();
                             }
                             if (self->acceptor_.is_open()) self->accept();
                           });
  }

  void stop() {
    beast::error_code ignored;
    acceptor_.close(ignored);
  }

 private:
  asio::io_context& ioc_;
  tcp::acceptor acceptor_;
  const std::string& body_;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s PORT BODY_BYTES [THREADS=2]\n", argv[0]);
    return 2;
  }
  auto port = static_cast<unsigned short>(std::atoi(argv[1]));
  const std::string body = makeBody(static_cast<std::size_t>(std::atol(argv[2])));
  int threads = argc > 3 ? std::atoi(argv[3]) : 2;
  if (threads < 1) threads = 1;

  asio::io_context ioc{threads};
  auto listener = std::make_shared<Listener>(
      ioc, tcp::endpoint{asio::ip::make_address("127.0.0.1"), port}, body);
  listener->accept();

  asio::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](beast::error_code, int) {
    listener->stop();
    ioc.stop();
  });

  std::printf("FLOOR_URL=http://127.0.0.1:%u\nFLOOR_BODY_BYTES=%zu\n", listener->port(),
              body.size());
  std::fflush(stdout);

  std::vector<std::thread> pool;
  for (int i = 1; i < threads; ++i) pool.emplace_back([&ioc] { ioc.run(); });
  ioc.run();
  for (auto& t : pool) t.join();
  return 0;
}
