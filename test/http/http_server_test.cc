// The HTTP front end on a real socket (port 0): framing, keep-alive, limits and bad input.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "verifyd/http/server.h"

namespace verifyd {
namespace {

class Client {
 public:
  explicit Client(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~Client() { ::close(fd_); }
  bool connected() const { return connected_; }
  void send(const std::string& data) {
    std::size_t off = 0;
    while (off < data.size()) {
      ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += static_cast<std::size_t>(n);
    }
  }
  // Reads one response (headers + Content-Length body). Empty on close or timeout.
  std::string response() {
    for (;;) {
      auto end = buf_.find("\r\n\r\n");
      if (end != std::string::npos) {
        std::size_t len = 0;
        auto cl = buf_.find("Content-Length: ");
        if (cl != std::string::npos && cl < end) len = std::stoul(buf_.substr(cl + 16));
        if (buf_.size() >= end + 4 + len) {
          std::string r = buf_.substr(0, end + 4 + len);
          buf_.erase(0, end + 4 + len);
          return r;
        }
      }
      char tmp[4096];
      ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
      if (n <= 0) return {};
      buf_.append(tmp, static_cast<std::size_t>(n));
    }
  }
  bool closedByPeer() {
    char c;
    return ::recv(fd_, &c, 1, 0) == 0;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  std::string buf_;
};

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    HttpServerOptions o;
    o.port = 0;
    o.threads = 2;
    server_ = std::make_unique<HttpServer>(o, [this](const ApiRequest& r, Respond respond) {
      ++calls_;
      ApiResponse out{200,
                      "{\"method\":\"" + r.method + "\",\"target\":\"" + r.target +
                          "\",\"body_size\":" + std::to_string(r.body.size()) + "}",
                      {}};
      // Answer from another thread, as a store completion does.
      std::lock_guard lock(responders_mu_);
      responders_.emplace_back([respond = std::move(respond), out = std::move(out)]() mutable {
        respond(std::move(out));
      });
    });
    port_ = *server_->listen();
    server_->run();
  }
  void TearDown() override {
    // Responses are posted into the server: finish them before the server goes away.
    std::lock_guard lock(responders_mu_);
    for (auto& t : responders_) t.join();
    server_.reset();
  }
  std::unique_ptr<HttpServer> server_;
  std::mutex responders_mu_;
  std::vector<std::thread> responders_;
  std::uint16_t port_ = 0;
  std::atomic<int> calls_{0};
};

TEST_F(HttpServerTest, KeepAliveServesManyRequestsOnOneConnection) {
  Client c(port_);
  ASSERT_TRUE(c.connected());
  for (int i = 0; i < 3; ++i) {
    c.send("GET /x" + std::to_string(i) + " HTTP/1.1\r\nHost: a\r\n\r\n");
    std::string r = c.response();
    EXPECT_EQ(r.rfind("HTTP/1.1 200", 0), 0u) << r;
    EXPECT_NE(r.find("\"target\":\"/x" + std::to_string(i) + "\""), std::string::npos);
    EXPECT_NE(r.find("Content-Type: application/json"), std::string::npos);
  }
}

TEST_F(HttpServerTest, ChunkedBodiesAreReassembled) {
  Client c(port_);
  c.send(
      "POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n "
      "world\r\n0\r\n\r\n");
  std::string r = c.response();
  EXPECT_NE(r.find("\"body_size\":11"), std::string::npos) << r;
}

TEST_F(HttpServerTest, OversizedBodyGets413AndServerKeepsServing) {
  {
    Client c(port_);
    c.send("POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 70000\r\n\r\n" +
           std::string(70000, 'a'));
    std::string r = c.response();
    EXPECT_EQ(r.rfind("HTTP/1.1 413", 0), 0u) << r;
    EXPECT_NE(r.find("\"code\":20413"), std::string::npos);
  }
  EXPECT_EQ(calls_.load(), 0);
  Client ok(port_);
  ok.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(ok.response().rfind("HTTP/1.1 200", 0), 0u);
}

TEST_F(HttpServerTest, GarbageGets400AndTheConnectionCloses) {
  Client c(port_);
  c.send("THIS IS NOT HTTP\r\n\r\n");
  std::string r = c.response();
  EXPECT_EQ(r.rfind("HTTP/1.1 400", 0), 0u) << r;
  EXPECT_TRUE(c.closedByPeer());
  Client big(port_);
  big.send("GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + std::string(20000, 'x') + "\r\n\r\n");
  EXPECT_EQ(big.response().rfind("HTTP/1.1 400", 0), 0u);
  Client ok(port_);
  ok.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(ok.response().rfind("HTTP/1.1 200", 0), 0u);
  EXPECT_EQ(calls_.load(), 1);
}

TEST_F(HttpServerTest, ExpectContinueIsAnswered) {
  Client c(port_);
  c.send("POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
  std::string interim = c.response();
  EXPECT_EQ(interim.rfind("HTTP/1.1 100", 0), 0u) << interim;
  c.send("abcd");
  EXPECT_NE(c.response().find("\"body_size\":4"), std::string::npos);
}

TEST_F(HttpServerTest, ConnectionCloseIsHonoured) {
  Client c(port_);
  c.send("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(c.response().rfind("HTTP/1.1 200", 0), 0u);
  EXPECT_TRUE(c.closedByPeer());
}

}  // namespace
}  // namespace verifyd
