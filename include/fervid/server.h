// fervid::Server: the HTTP JSON service and its browser page (design.md section 7, "Service"),
// a thin front-end over one shared Analyzer (style.md habit 14: the model is loaded once,
// per-request settings are copies, errors are JSON with the right status, /health answers
// readiness).
//
//   auto analyzer = std::make_shared<const fervid::Analyzer>(fervid::default_model_path());
//   fervid::Server server(analyzer, {/*host=*/"127.0.0.1", /*port=*/8080});
//   server.bind();   // throws naming host:port when the port is taken
//   server.run();    // blocks until stop() (from another thread or a signal watcher)
//
// Endpoints (JSON everywhere; errors are {"error": "..."} with 400, 401 (no token), 403 (another
// origin), 404, 405, 408 (a header or body too slow), 411 (a chunked body), 413, 415, 421 (a
// foreign Host), 429 (a client's sessions), 431 (a header too large) or 503 (with Retry-After);
// 500 only for internal faults). No answer names a path on the server's disk:
//   GET    /                          the browser page (photo upload; camera or shared window)
//   GET    /health                    {"status": "ok", "model" (file name), "sessions", "max_sessions", "uptime_s"}
//   GET    /v1/model                  class names and colours, model file name, sha256, configuration,
//                                     "faces": the face recipe in effect, "model_face_recipe": the
//                                     file's, "analyze_parameters": what /v1/analyze accepts
//   POST   /v1/analyze                image bytes (image/*, application/octet-stream) or multipart
//                                     field "image"; ?whole_image=1; how faces are found for this
//                                     request: the face recipe's per-request options by name
//                                     (?min_face=N&min_score=0.6 ..., face_recipe.h's table and
//                                     its ranges); how they are cut (margin, alignment) is the model's
//   POST   /v1/sessions               optional JSON {"every", "smooth", "min_hits", "full_scan_every"}
//   POST   /v1/sessions/{id}/frames   image bytes; ?t=seconds (default: the server's clock)
//   GET    /v1/sessions/{id}          per-track summaries
//   DELETE /v1/sessions/{id}          ends the session (answers its final summary)
//
// Images are decoded from memory with decode_image(): the header's size is checked against
// max_pixels before anything is decoded (413), non-image data is refused (400).
//
// Threads: one I/O thread reads and writes every connection (src/server/http.h), so a slow or
// idle client holds a connection, never a thread: a request header must arrive within
// header_timeout_s of its first byte and a body within body_timeout_s (408 otherwise). The page,
// /health and /v1/model are answered on that thread, so no amount of work delays them. Requests
// that work (analyze, sessions, frames) wait in a queue of `queue_depth` (503 with Retry-After
// when it is full) for `http_threads` threads, of which at most `workers` decode and analyse at
// once; a request whose client hangs up while it waits is dropped unanalysed. Each analysis uses
// libtorch's intra-op threads, so workers x intra-op threads should not exceed the cores
// (`fervid serve` sets intra-op = cores / workers). A live session (VideoSession, not
// thread-safe) is guarded by its own mutex: frames of one session are processed one at a time,
// in arrival order.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "fervid/analyzer.h"
#include "fervid/video.h"

namespace fervid {

// Who may use the server:
// - Host: a request's Host header must name this server (loopback names with the port, the
//   bound address, or allowed_hosts) unless it listens on every interface: a foreign Host is
//   DNS rebinding (another site's page reaching a local server through its own name): 421.
// - Origin: a browser request from another origin (Origin, or Sec-Fetch-Site: cross-site on
//   anything but a navigation) is refused (403), unless allowed_origins names it; requests
//   without those headers (curl, scripts) pass.
// - token (non-empty): every request but /health carries it, as "Authorization: Bearer <token>"
//   or the cookie that GET /?token=<token> sets (and redirects to /, so the address bar keeps
//   no token); 401 otherwise. Compared in constant time.
// - Framing: more than one Content-Length, one that is not a decimal number, or a
//   Transfer-Encoding: 400 (411 for chunked alone), and the connection is closed (a body read
//   by one length and not the other is request smuggling).
// Not on loopback (validate()): a token is required unless `insecure`.
struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0 = any free port (bind() returns it)
  // Largest request body: an upload or a frame (413 above it, before the body is read).
  int64_t max_body_bytes = int64_t{16} << 20;
  // Largest width * height an image header may claim (413 above it, nothing decoded).
  int64_t max_pixels = 40'000'000;
  int max_sessions = 64;          // live sessions at once (503 when full)
  // Live sessions one client address may hold (429 above it): one page filling every
  // session would leave none for the others.
  int max_sessions_per_client = 8;
  double session_timeout_s = 60;  // a session idle this long is removed
  int workers = 2;                // requests decoding and analysing at once
  int http_threads = 8;           // requests handled at once (waiting for a session or a worker included)
  int queue_depth = 32;           // requests waiting for a thread (503 + Retry-After beyond)
  int max_connections = 512;      // open at once (503 beyond)
  int max_requests_per_connection = 1000;  // then the connection is closed (keep-alive limit)
  int64_t max_header_bytes = 16 * 1024;    // request line and headers (431 above it)
  double header_timeout_s = 10;   // a request's first byte to the end of its header (408)
  double body_timeout_s = 60;     // the end of the header to the end of the body (408)
  double idle_timeout_s = 5;      // a kept-alive connection waiting for its next request
  double write_timeout_s = 30;    // an answer the client does not take in this time: closed
  std::string token;                         // see above; empty: none
  bool insecure = false;                     // serve beyond loopback without a token
  std::vector<std::string> allowed_origins;  // e.g. "https://class.example.org"
  std::vector<std::string> allowed_hosts;    // Host values besides this server's own, e.g. a proxy's name
  // Defaults of a new session (a request may override every, smooth, min_hits,
  // full_scan_every). Only running sums per track: memory stays constant however long a
  // session lasts.
  VideoOptions video = [] {
    VideoOptions v;
    v.keep_entries = false;
    return v;
  }();
  // Receives one line per request ("POST /v1/analyze 200 41.2 ms"); empty = no request log.
  std::function<void(const std::string&)> log;

  // Throws std::invalid_argument naming the field and its value when one is out of range, and
  // when `host` is not loopback and there is neither a token nor `insecure`.
  void validate() const;
};

// Whether `host` (an address or name as given to --host) is a loopback address: 127.0.0.0/8,
// ::1, localhost.
bool is_loopback_host(const std::string& host);
// 128 random bits (std::random_device) as 32 hex digits: session ids, `fervid serve --token random`.
std::string random_token();
// Constant-time equality (the time depends on the lengths only): for comparing secrets.
bool constant_time_equal(const std::string& a, const std::string& b);

// POST /v1/sessions's body (empty: `defaults`): a JSON object of every, smooth, min_hits,
// full_scan_every over `defaults`. Throws std::invalid_argument ("session options: ...") naming
// the field for anything else, a wrong type or an out-of-range value.
VideoOptions session_options_from_json(const std::string& body, const VideoOptions& defaults);

class Server {
 public:
  // `analyzer` is shared (const, thread-safe) and kept alive by the server. Reads the model
  // file once for its sha256. Throws std::invalid_argument for bad options.
  Server(std::shared_ptr<const Analyzer> analyzer, ServerOptions options = {});
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Opens the listening socket; returns the port (the chosen one when options.port is 0).
  // Throws std::runtime_error naming host:port and the reason (e.g. the port is in use).
  int bind();
  // Serves until stop(); binds first when bind() was not called. Call once.
  void run();
  // Stops accepting and makes run() return once the requests in flight are answered.
  // Thread-safe, idempotent; may come before run(). Not from inside a request.
  void stop();

  int port() const;      // 0 before bind()
  int sessions() const;  // live sessions now
  const ServerOptions& options() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The CSS colour ("#rrggbb") the page draws class `label` with: expression_color()'s BGR.
std::string expression_css_color(int label);

}  // namespace fervid
