// fervid::http: the HTTP/1.1 front end of `fervid serve` (server.h), written for the ways a
// server on a network is abused rather than for features.
//
// - RequestParser: bytes -> Request, incrementally, with strict framing: one Content-Length of
//   decimal digits (two, a sign, a list or a Transfer-Encoding: 400 / 411; the connection ends),
//   header bytes and count bounded (431), the body bounded before it is read (413), no obsolete
//   line folding, no control characters in header values. Pure: no sockets (fuzz/ feeds it).
// - parse_query / percent_decode / parse_multipart: the pieces of a request the routes read.
// - HttpServer: one I/O thread (epoll) reads and writes every connection, so a slow or idle
//   client holds a connection, never a thread: a request header must arrive within
//   header_timeout_s of its first byte, a body within body_timeout_s of its header, an answer
//   must be taken within write_timeout_s (408 or the connection closed). Quick routes (`quick`:
//   /health, the page) are answered on the I/O thread, so work cannot starve them; the rest
//   waits in a bounded queue for `threads` workers (503 with Retry-After when it is full), and a
//   request whose client hangs up while it waits is dropped unserved (while it runs, `work` sees
//   `cancelled`).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fervid::http {

struct Header {
  std::string name;  // as sent
  std::string value;
};

// ASCII-lowercase copy.
std::string lower(std::string_view s);

struct Request {
  std::string method;   // "GET", as sent (methods are case-sensitive)
  std::string target;   // "/v1/analyze?min_face=40", as sent
  std::string path;     // "/v1/analyze", percent-decoded
  std::string version;  // "HTTP/1.1" or "HTTP/1.0"
  std::vector<std::pair<std::string, std::string>> params;  // the query, decoded, in order
  std::vector<Header> headers;
  std::string body;
  std::string remote_addr;  // the peer's address ("127.0.0.1", "::1")
  int remote_port = 0;

  // The first value of header `name` (case-insensitive), "" when absent.
  std::string header(std::string_view name) const;
  bool has_header(std::string_view name) const;
  size_t header_count(std::string_view name) const;
  std::vector<std::string> header_values(std::string_view name) const;
  bool has_param(std::string_view key) const;
  std::string param(std::string_view key) const;  // the first value, "" when absent
  // "image/JPEG; charset=x" -> "image/jpeg".
  std::string media_type() const;
  // HTTP/1.1 without "Connection: close", or HTTP/1.0 with "Connection: keep-alive".
  bool wants_keep_alive() const;
};

struct Response {
  int status = 200;
  std::vector<Header> headers;  // besides Content-Type, Content-Length and Connection
  std::string content_type;     // empty: no Content-Type
  std::string body;
  bool close = false;  // end the connection after this answer

  void set_header(const std::string& name, const std::string& value);  // replaces one of that name
  std::string header(std::string_view name) const;
  void set_content(std::string b, std::string type) {
    body = std::move(b);
    content_type = std::move(type);
  }
};

// "Not Found" for 404; "Unknown" for a status without a phrase here.
const char* reason_phrase(int status);
// Status line, headers (Content-Length always; Connection: close or keep-alive) and, unless
// the request was HEAD, the body.
std::string serialize(const Response& res, bool head_request, bool keep_alive);

// A malformed query, multipart body or percent-encoding: what is wrong, in words for the client.
struct ParseError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// "%41+b" -> "A b" when `plus_is_space`. Throws ParseError on a '%' not followed by two hex digits.
std::string percent_decode(std::string_view s, bool plus_is_space);
// "a=1&b=x%20y&c" -> {{"a","1"},{"b","x y"},{"c",""}}.
std::vector<std::pair<std::string, std::string>> parse_query(std::string_view query);

struct MultipartPart {
  std::string name;      // Content-Disposition's name
  std::string filename;  // its filename, "" when absent
  std::string content_type;
  std::string content;
};
// The parts of a multipart/form-data body; `content_type` is the request's whole Content-Type
// header (its boundary parameter delimits the parts). Throws ParseError naming what is missing
// or malformed; at most `max_parts` parts.
std::vector<MultipartPart> parse_multipart(std::string_view content_type, std::string_view body,
                                           size_t max_parts = 64);

struct ParseLimits {
  size_t max_header_bytes = 16 * 1024;  // request line and headers (431 above it)
  size_t max_headers = 100;             // header lines (431 above it)
  int64_t max_body_bytes = int64_t{16} << 20;  // a Content-Length above it: 413, nothing read
};

// One request at a time from a connection's bytes. feed() consumes what belongs to the current
// request and stops at its end (the rest is the next request's: feed it after reset()).
class RequestParser {
 public:
  enum class State { kHeader, kBody, kDone, kError };
  explicit RequestParser(ParseLimits limits = {});

  // Consumes bytes of the current request from data[0, n); returns how many it took.
  size_t feed(const char* data, size_t n);
  State state() const { return state_; }
  bool started() const { return started_; }  // a byte of this request has arrived
  bool headers_done() const { return state_ == State::kBody || state_ == State::kDone; }
  // The request (its body once kDone); valid from headers_done().
  Request& request() { return request_; }
  const Request& request() const { return request_; }
  int64_t content_length() const { return content_length_; }
  bool expects_continue() const { return expect_continue_; }  // "Expect: 100-continue"
  // kError: the status to answer (400, 411, 413, 414, 431, 505) and why.
  int error_status() const { return error_status_; }
  const std::string& error_message() const { return error_message_; }
  // Ready for the next request on the connection.
  void reset();

 private:
  void fail(int status, std::string message);
  void parse_head();

  ParseLimits limits_;
  State state_ = State::kHeader;
  bool started_ = false;
  std::string head_;  // the header bytes so far
  Request request_;
  int64_t content_length_ = 0;
  bool expect_continue_ = false;
  int error_status_ = 0;
  std::string error_message_;
};

// ---- the server ---------------------------------------------------------------------------

struct ServerLimits {
  ParseLimits parse;
  double header_timeout_s = 10;  // a request's first byte to its blank line (408)
  double body_timeout_s = 60;    // the header's end to the body's (408)
  double idle_timeout_s = 5;     // a kept-alive connection waiting for its next request
  double write_timeout_s = 30;   // an answer not taken by the client in this time: closed
  int max_connections = 512;     // open at once; beyond it a new one is answered 503 and closed
  int max_requests_per_connection = 1000;
  int threads = 8;      // workers running `work`
  int queue_depth = 32;  // requests waiting for a worker (503 + Retry-After when full)
  int retry_after_s = 1;
};

struct Handlers {
  // After a request's header, before its body is read (I/O thread, must be quick): answer and
  // return true to refuse it; its body is never read and the connection closes after the answer.
  std::function<bool(const Request&, Response&)> screen;
  // A whole request (I/O thread, must be quick): answer and return true, or false to queue it.
  std::function<bool(const Request&, Response&)> quick;
  // A queued request, on a worker. `cancelled` turns true when its client hangs up.
  std::function<void(const Request&, Response&, const std::atomic<bool>& cancelled)> work;
  // The body of an answer the server gives itself (parse errors, 408, 503): fill `res`.
  std::function<void(int status, const std::string& message, Response& res)> error;
  // After an answer is complete: the request (its headers; the body may be empty) and the
  // milliseconds from its header's end to its answer.
  std::function<void(const Request&, const Response&, double ms)> log;
};

struct ServerStats {
  int64_t accepted = 0;         // connections
  int64_t open = 0;             // connections open now
  int64_t requests = 0;         // answers given
  int64_t busy = 0;             // 503: queue full or too many connections
  int64_t cancelled = 0;        // requests dropped unserved (their client had gone)
  int64_t timed_out = 0;        // connections ended by a header, body or write deadline
  int64_t queued = 0;           // waiting for a worker now
};

class HttpServer {
 public:
  HttpServer(ServerLimits limits, Handlers handlers);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Listens on host:port (port 0: any free one); returns the port. Throws std::runtime_error
  // naming host, port and the reason. Idempotent.
  int bind(const std::string& host, int port);
  // Serves until stop(): answers the requests in flight (Connection: close), then returns.
  void run();
  // Thread-safe, idempotent, may come before run(); not from inside a handler.
  void stop();
  ServerStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fervid::http
