// fervid::http (src/server/http.h): the request parser's framing rules, query and multipart
// decoding, and the HttpServer's behaviour under slow, idle, departing and too many clients,
// with handlers the test controls (a worker held on a latch), so every case is deterministic.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "http.h"

namespace {

using fervid::http::HttpServer;
using fervid::http::ParseLimits;
using fervid::http::Request;
using fervid::http::RequestParser;
using fervid::http::Response;
using State = RequestParser::State;

// ---- parser -------------------------------------------------------------------------------

RequestParser parse_all(const std::string& bytes, ParseLimits limits = {}) {
  RequestParser p(limits);
  p.feed(bytes.data(), bytes.size());
  return p;
}

TEST(HttpParser, ASimpleGetWithItsQueryDecoded) {
  auto p = parse_all("GET /v1/a%20b?x=1&y=a+b%21&flag HTTP/1.1\r\nHost: h:1\r\nX-Two:  v  \r\n\r\n");
  ASSERT_EQ(p.state(), State::kDone);
  const Request& r = p.request();
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(r.path, "/v1/a b");
  EXPECT_EQ(r.param("x"), "1");
  EXPECT_EQ(r.param("y"), "a b!");
  EXPECT_TRUE(r.has_param("flag"));
  EXPECT_FALSE(r.has_param("z"));
  EXPECT_EQ(r.header("host"), "h:1");
  EXPECT_EQ(r.header("x-two"), "v");
  EXPECT_TRUE(r.wants_keep_alive());
}

TEST(HttpParser, ByteByByteEqualsAllAtOnceAndStopsAtTheRequestsEnd) {
  const std::string first = "POST /p HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
  const std::string second = "GET /q HTTP/1.0\r\n\r\n";
  const std::string both = first + second;
  RequestParser p;
  size_t at = 0;
  while (p.state() != State::kDone && at < both.size()) at += p.feed(both.data() + at, 1);
  ASSERT_EQ(p.state(), State::kDone);
  EXPECT_EQ(at, first.size());
  EXPECT_EQ(p.request().body, "hello");
  p.reset();
  at += p.feed(both.data() + at, both.size() - at);
  ASSERT_EQ(p.state(), State::kDone);
  EXPECT_EQ(at, both.size());
  EXPECT_EQ(p.request().path, "/q");
  EXPECT_FALSE(p.request().wants_keep_alive());  // HTTP/1.0 without keep-alive
}

TEST(HttpParser, BareLineFeedsAndLeadingEmptyLinesAreAccepted) {
  auto p = parse_all("\r\n\r\nGET / HTTP/1.1\nHost: x\n\n");
  ASSERT_EQ(p.state(), State::kDone);
  EXPECT_EQ(p.request().header("Host"), "x");
}

struct Refusal {
  const char* request;
  int status;
  const char* words;  // in the message
};

TEST(HttpParser, AmbiguousOrHostileFramingIsRefusedWithItsStatus) {
  const Refusal cases[] = {
      {"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 400, "more than one Content-Length"},
      {"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400, "not a number"},
      {"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n", 400, "not a number"},
      {"POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n", 400, "not a number"},
      {"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", 400, "not a number"},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 411, "chunked"},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400, "both"},
      {"GET / HTTP/1.1\r\nX: a\r\n  folded\r\n\r\n", 400, "folding"},
      {"GET / HTTP/1.1\r\nBad Name: a\r\n\r\n", 400, "malformed header"},
      {"GET / HTTP/1.1\r\nX: a\x01z\r\n\r\n", 400, "control character"},
      {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "Host"},
      {"GET / HTTP/2.0\r\n\r\n", 505, "version"},
      {"GET http://x/ HTTP/1.1\r\n\r\n", 400, "start with /"},
      {"GET /%zz HTTP/1.1\r\n\r\n", 400, "percent"},
      {"GET /a%00 HTTP/1.1\r\n\r\n", 400, "NUL"},
      {"GET  / HTTP/1.1\r\n\r\n", 400, "request line"},
      {"G(T / HTTP/1.1\r\n\r\n", 400, "method"},
  };
  for (const auto& c : cases) {
    auto p = parse_all(c.request);
    ASSERT_EQ(p.state(), State::kError) << c.request;
    EXPECT_EQ(p.error_status(), c.status) << c.request;
    EXPECT_NE(p.error_message().find(c.words), std::string::npos) << c.request << " -> " << p.error_message();
  }
}

TEST(HttpParser, SizesAreBoundedBeforeTheBytesAreKept) {
  ParseLimits limits;
  limits.max_header_bytes = 1024;
  limits.max_headers = 4;
  limits.max_body_bytes = 100;
  auto big = parse_all("GET / HTTP/1.1\r\nX: " + std::string(2000, 'a') + "\r\n\r\n", limits);
  EXPECT_EQ(big.error_status(), 431);
  // Endless header bytes without a blank line: refused once past the limit, not kept growing.
  RequestParser endless(limits);
  const std::string chunk(300, 'b');
  size_t fed = 0;
  endless.feed("GET / HTTP/1.1\r\nX: ", 19);
  for (int i = 0; i < 100 && endless.state() != State::kError; ++i) fed += endless.feed(chunk.data(), chunk.size());
  EXPECT_EQ(endless.error_status(), 431);
  EXPECT_LE(fed, 1100u);
  std::string many = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 5; ++i) many += "X" + std::to_string(i) + ": v\r\n";
  EXPECT_EQ(parse_all(many + "\r\n", limits).error_status(), 431);
  // A body over the limit: refused on its header, before one byte of it is read.
  RequestParser body(limits);
  const std::string head = "POST / HTTP/1.1\r\nContent-Length: 101\r\n\r\n";
  const std::string all = head + std::string(101, 'x');
  EXPECT_EQ(body.feed(all.data(), all.size()), head.size());
  EXPECT_EQ(body.error_status(), 413);
  EXPECT_NE(body.error_message().find("101"), std::string::npos);
}

TEST(HttpParser, ExpectContinueIsSeen) {
  RequestParser p;
  const std::string head = "POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
  p.feed(head.data(), head.size());
  EXPECT_EQ(p.state(), State::kBody);
  EXPECT_TRUE(p.headers_done());
  EXPECT_TRUE(p.expects_continue());
  p.feed("abc", 3);
  EXPECT_EQ(p.state(), State::kDone);
}

TEST(HttpMultipart, PartsNamesAndContent) {
  const std::string body =
      "preamble\r\n--b0\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhi\r\n"
      "--b0\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a \\\"q\\\".png\"\r\n"
      "Content-Type: image/png\r\n\r\n\x89PNG\r\n--b\r\n--b0--\r\n";
  const auto parts = fervid::http::parse_multipart("multipart/form-data; boundary=\"b0\"", body);
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0].name, "note");
  EXPECT_EQ(parts[0].content, "hi");
  EXPECT_EQ(parts[1].name, "image");
  EXPECT_EQ(parts[1].filename, "a \"q\".png");
  EXPECT_EQ(parts[1].content_type, "image/png");
  EXPECT_EQ(parts[1].content, "\x89PNG\r\n--b");  // a line that only starts like the boundary is content
}

TEST(HttpMultipart, MalformedBodiesAreParseErrors) {
  using fervid::http::parse_multipart;
  using fervid::http::ParseError;
  EXPECT_THROW(parse_multipart("multipart/form-data", "--x\r\n\r\n--x--"), ParseError);
  EXPECT_THROW(parse_multipart("multipart/form-data; boundary=x", "no boundary here"), ParseError);
  EXPECT_THROW(parse_multipart("multipart/form-data; boundary=x", "--x\r\nA: b\r\n\r\nnever closed"), ParseError);
  EXPECT_THROW(parse_multipart("multipart/form-data; boundary=x", "--x\r\nno colon\r\n\r\nz\r\n--x--"), ParseError);
  std::string many;
  for (int i = 0; i < 5; ++i) many += "--x\r\n\r\nv\r\n";
  EXPECT_THROW(parse_multipart("multipart/form-data; boundary=x", many + "--x--", 4), ParseError);
}

TEST(HttpSerialize, HeadKeepsTheLengthAndDropsTheBody) {
  Response r;
  r.status = 404;
  r.set_content("{}", "application/json");
  r.set_header("Content-Length", "999");  // written by serialize, once
  const std::string get = fervid::http::serialize(r, false, true);
  const std::string head = fervid::http::serialize(r, true, false);
  EXPECT_EQ(get, "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
                 "Connection: keep-alive\r\n\r\n{}");
  EXPECT_EQ(head, "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
                  "Connection: close\r\n\r\n");
}

// ---- server -------------------------------------------------------------------------------

// Holds workers until opened.
class Latch {
 public:
  void open() {
    {
      std::lock_guard<std::mutex> lock(m_);
      open_ = true;
    }
    cv_.notify_all();
  }
  void wait() {
    std::unique_lock<std::mutex> lock(m_);
    cv_.wait(lock, [&] { return open_; });
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  bool open_ = false;
};

// Waits (polling, at most 10 s) until `ok`; the tests assert what happens, never how fast.
bool eventually(const std::function<bool()>& ok) {
  for (int i = 0; i < 1000; ++i) {
    if (ok()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return ok();
}

class Client {
 public:
  explicit Client(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{10, 0};  // a hang fails the test instead of blocking it
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) throw std::runtime_error("connect");
  }
  ~Client() { close(); }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  void send(const std::string& s) { ::send(fd_, s.data(), s.size(), MSG_NOSIGNAL); }
  // One answer: status line and headers, then Content-Length bytes. "" on EOF or timeout.
  std::string answer() {
    while (true) {
      const size_t end = buf_.find("\r\n\r\n");
      if (end != std::string::npos) {
        const size_t cl = buf_.find("Content-Length: ");
        const size_t len = cl < end ? std::stoul(buf_.substr(cl + 16)) : 0;
        if (buf_.size() >= end + 4 + len) {
          std::string out = buf_.substr(0, end + 4 + len);
          buf_.erase(0, end + 4 + len);
          return out;
        }
      }
      char b[4096];
      const ssize_t n = ::recv(fd_, b, sizeof(b), 0);
      if (n <= 0) return "";
      buf_.append(b, static_cast<size_t>(n));
    }
  }
  bool closed_by_server() {
    char b[256];
    while (true) {
      const ssize_t n = ::recv(fd_, b, sizeof(b), 0);
      if (n == 0) return true;
      if (n < 0) return errno == ECONNRESET;
    }
  }

 private:
  int fd_ = -1;
  std::string buf_;
};

struct TestServer {
  explicit TestServer(fervid::http::ServerLimits limits, fervid::http::Handlers h = {}) {
    if (!h.quick) {
      h.quick = [](const Request& req, Response& res) {
        if (req.path != "/quick") return false;
        res.set_content("quick", "text/plain");
        return true;
      };
    }
    if (!h.work) {
      h.work = [this](const Request& req, Response& res, const std::atomic<bool>& cancelled) {
        ++worked;
        if (req.path == "/block") latch.wait();
        saw_cancelled = cancelled.load();
        res.set_content("worked " + req.path, "text/plain");
      };
    }
    server = std::make_unique<HttpServer>(limits, std::move(h));
    port = server->bind("127.0.0.1", 0);
    thread = std::thread([this] { server->run(); });
  }
  ~TestServer() {
    latch.open();
    server->stop();
    thread.join();
  }
  Latch latch;
  std::atomic<int> worked{0};
  std::atomic<bool> saw_cancelled{false};
  std::unique_ptr<HttpServer> server;
  int port = 0;
  std::thread thread;
};

const std::string kQuick = "GET /quick HTTP/1.1\r\nHost: x\r\n\r\n";

TEST(HttpServer, SlowHeaderClientsHoldNoThreadAndAreTimedOut) {
  fervid::http::ServerLimits limits;
  limits.threads = 1;
  limits.header_timeout_s = 0.5;
  TestServer s(limits);
  std::vector<std::unique_ptr<Client>> slow;
  for (int i = 0; i < 20; ++i) {
    slow.push_back(std::make_unique<Client>(s.port));
    slow.back()->send("GET /slow HTTP/1.1\r\nHo");  // and never the rest
  }
  // Meanwhile, a quick route and a worked one are answered.
  Client c(s.port);
  c.send(kQuick);
  EXPECT_NE(c.answer().find("200 OK"), std::string::npos);
  c.send("GET /work HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_NE(c.answer().find("worked /work"), std::string::npos);
  for (auto& sc : slow) {
    const std::string a = sc->answer();
    EXPECT_NE(a.find("408 Request Timeout"), std::string::npos) << a;
    EXPECT_NE(a.find("header did not arrive"), std::string::npos);
    EXPECT_TRUE(sc->closed_by_server());
  }
  EXPECT_EQ(s.server->stats().timed_out, 20);
}

TEST(HttpServer, ASlowBodyIsTimedOut) {
  fervid::http::ServerLimits limits;
  limits.body_timeout_s = 0.3;
  TestServer s(limits);
  Client c(s.port);
  c.send("POST /work HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc");
  const std::string a = c.answer();
  EXPECT_NE(a.find("408"), std::string::npos);
  EXPECT_NE(a.find("body did not arrive"), std::string::npos);
  EXPECT_EQ(s.worked, 0);
}

TEST(HttpServer, AFullQueueAnswers503WithRetryAfter) {
  fervid::http::ServerLimits limits;
  limits.threads = 1;
  limits.queue_depth = 1;
  TestServer s(limits);
  Client running(s.port), waiting(s.port), refused(s.port);
  running.send("GET /block HTTP/1.1\r\n\r\n");
  ASSERT_TRUE(eventually([&] { return s.worked == 1; }));
  waiting.send("GET /w HTTP/1.1\r\n\r\n");
  ASSERT_TRUE(eventually([&] { return s.server->stats().queued == 1; }));
  refused.send("GET /r HTTP/1.1\r\n\r\n");
  const std::string a = refused.answer();
  EXPECT_NE(a.find("503 Service Unavailable"), std::string::npos) << a;
  EXPECT_NE(a.find("Retry-After: 1"), std::string::npos);
  // The quick path is not behind the queue.
  refused.send(kQuick);
  EXPECT_NE(refused.answer().find("quick"), std::string::npos);
  s.latch.open();
  EXPECT_NE(running.answer().find("worked /block"), std::string::npos);
  EXPECT_NE(waiting.answer().find("worked /w"), std::string::npos);
  EXPECT_EQ(s.server->stats().busy, 1);
}

TEST(HttpServer, WorkForAClientThatHasGoneIsNotDone) {
  fervid::http::ServerLimits limits;
  limits.threads = 1;
  TestServer s(limits);
  auto running = std::make_unique<Client>(s.port);
  auto waiting = std::make_unique<Client>(s.port);
  running->send("GET /block HTTP/1.1\r\n\r\n");
  ASSERT_TRUE(eventually([&] { return s.worked == 1; }));
  waiting->send("GET /w HTTP/1.1\r\n\r\n");
  ASSERT_TRUE(eventually([&] { return s.server->stats().queued == 1; }));
  waiting->close();   // gone while queued: dropped
  running->close();   // gone while running: told through `cancelled`
  ASSERT_TRUE(eventually([&] { return s.server->stats().cancelled == 1 && s.server->stats().open == 0; }));
  s.latch.open();
  Client after(s.port);
  after.send("GET /next HTTP/1.1\r\n\r\n");
  EXPECT_NE(after.answer().find("worked /next"), std::string::npos);
  EXPECT_EQ(s.worked, 2);  // /block and /next; /w never ran
  EXPECT_FALSE(s.saw_cancelled);  // /next's own flag
}

TEST(HttpServer, ARunningRequestSeesItsClientLeave) {
  fervid::http::ServerLimits limits;
  fervid::http::Handlers h;
  Latch go;
  std::atomic<int> seen{-1};
  h.work = [&](const Request&, Response& res, const std::atomic<bool>& cancelled) {
    go.wait();
    seen = cancelled ? 1 : 0;
    res.set_content("x", "text/plain");
  };
  TestServer s(limits, h);
  {
    Client c(s.port);
    c.send("GET /a HTTP/1.1\r\n\r\n");
    ASSERT_TRUE(eventually([&] { return s.server->stats().queued == 0 && s.server->stats().open == 1; }));
  }
  ASSERT_TRUE(eventually([&] { return s.server->stats().open == 0; }));
  go.open();
  ASSERT_TRUE(eventually([&] { return seen != -1; }));
  EXPECT_EQ(seen, 1);
}

TEST(HttpServer, KeepAliveIsLimitedAndPipelinedRequestsAnsweredInOrder) {
  fervid::http::ServerLimits limits;
  limits.max_requests_per_connection = 2;
  TestServer s(limits);
  Client c(s.port);
  c.send("GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nGET /3 HTTP/1.1\r\n\r\n");
  const std::string a1 = c.answer(), a2 = c.answer();
  EXPECT_NE(a1.find("worked /1"), std::string::npos);
  EXPECT_NE(a1.find("Connection: keep-alive"), std::string::npos);
  EXPECT_NE(a2.find("worked /2"), std::string::npos);
  EXPECT_NE(a2.find("Connection: close"), std::string::npos);
  EXPECT_EQ(c.answer(), "");
  EXPECT_EQ(s.worked, 2);
}

TEST(HttpServer, IdleConnectionsAreClosed) {
  fervid::http::ServerLimits limits;
  limits.idle_timeout_s = 0.2;
  limits.header_timeout_s = 0.2;
  TestServer s(limits);
  Client never(s.port), once(s.port);
  once.send(kQuick);
  EXPECT_NE(once.answer().find("quick"), std::string::npos);
  EXPECT_TRUE(once.closed_by_server());
  EXPECT_TRUE(never.closed_by_server());  // connected and sent nothing: no 408, just closed
  EXPECT_TRUE(eventually([&] { return s.server->stats().open == 0; }));
}

TEST(HttpServer, AScreenedRequestIsRefusedBeforeItsBody) {
  fervid::http::ServerLimits limits;
  fervid::http::Handlers h;
  h.screen = [](const Request& req, Response& res) {
    if (req.header("X-Key") == "ok") return false;
    res.status = 401;
    res.set_content("no key", "text/plain");
    return true;
  };
  TestServer s(limits, h);
  Client c(s.port);
  c.send("POST /work HTTP/1.1\r\nContent-Length: 1000000\r\n\r\n");  // the body never comes
  const std::string a = c.answer();
  EXPECT_NE(a.find("401"), std::string::npos);
  EXPECT_NE(a.find("Connection: close"), std::string::npos);
  EXPECT_TRUE(c.closed_by_server());
  EXPECT_EQ(s.worked, 0);
  Client ok(s.port);
  ok.send("POST /work HTTP/1.1\r\nX-Key: ok\r\nContent-Length: 2\r\n\r\nhi");
  EXPECT_NE(ok.answer().find("worked"), std::string::npos);
}

TEST(HttpServer, ParseErrorsAreAnsweredAndTheRestIsNotRead) {
  fervid::http::ServerLimits limits;
  TestServer s(limits);
  Client c(s.port);
  // Smuggling shape: two lengths, and a second request hidden in what one of them would read.
  c.send("POST /a HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 30\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n");
  const std::string a = c.answer();
  EXPECT_NE(a.find("400 Bad Request"), std::string::npos);
  EXPECT_TRUE(c.closed_by_server());
  EXPECT_EQ(s.worked, 0);
}

TEST(HttpServer, ExpectContinueGetsItsInterimAnswer) {
  fervid::http::ServerLimits limits;
  TestServer s(limits);
  Client c(s.port);
  c.send("POST /up HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
  EXPECT_EQ(c.answer(), "HTTP/1.1 100 Continue\r\n\r\n");
  c.send("abc");
  EXPECT_NE(c.answer().find("worked /up"), std::string::npos);
}

TEST(HttpServer, ConnectionsBeyondTheLimitAreRefused) {
  fervid::http::ServerLimits limits;
  limits.max_connections = 2;
  TestServer s(limits);
  Client a(s.port), b(s.port);
  ASSERT_TRUE(eventually([&] { return s.server->stats().open == 2; }));
  Client c(s.port);
  const std::string r = c.answer();
  EXPECT_NE(r.find("503"), std::string::npos) << r;
  EXPECT_NE(r.find("Retry-After"), std::string::npos);
  a.send(kQuick);
  EXPECT_NE(a.answer().find("quick"), std::string::npos);
}

TEST(HttpServer, StopAnswersTheRequestsInFlight) {
  fervid::http::ServerLimits limits;
  auto s = std::make_unique<TestServer>(limits);
  Client c(s->port);
  c.send("GET /block HTTP/1.1\r\n\r\n");
  ASSERT_TRUE(eventually([&] { return s->worked == 1; }));
  s->server->stop();  // run() ends once the request in flight is answered
  s->latch.open();
  const std::string a = c.answer();
  EXPECT_NE(a.find("worked /block"), std::string::npos);
  EXPECT_NE(a.find("Connection: close"), std::string::npos);
  s.reset();  // joins run()
}

}  // namespace
