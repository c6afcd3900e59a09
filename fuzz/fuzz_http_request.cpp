// The server's request handling from raw bytes: the HTTP/1.1 request parser (src/server/http.h)
// fed as a socket would split them, then what the routes read of each request: the query, the
// media type, a multipart upload, session options JSON (session_options_from_json), and the
// answer written back. Bad input is the parser's kError state with a 4xx/5xx status, a
// ParseError, or std::invalid_argument for session options; anything else is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "fervid/server.h"
#include "http.h"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

void exercise(const fervid::http::Request& req, int64_t content_length) {
  check(req.body.size() == static_cast<size_t>(content_length));
  check(!req.target.empty() && req.target.front() == '/');
  check(req.version == "HTTP/1.1" || req.version == "HTTP/1.0");
  (void)req.wants_keep_alive();
  (void)req.header("Host");
  const std::string type = req.media_type();
  if (type == "multipart/form-data") {
    try {
      const auto parts = fervid::http::parse_multipart(req.header("Content-Type"), req.body);
      size_t bytes = 0;
      for (const auto& p : parts) bytes += p.content.size();
      check(bytes <= req.body.size());
    } catch (const fervid::http::ParseError&) {
    }
  }
  if (req.body.size() <= 4096) {
    try {
      (void)fervid::session_options_from_json(req.body, fervid::VideoOptions{});
    } catch (const std::invalid_argument&) {
    }
  }
  fervid::http::Response res;
  res.set_content(req.path, "text/plain");
  for (const auto& [k, v] : req.params) res.set_header("X-" + std::to_string(k.size()), std::to_string(v.size()));
  const std::string text = fervid::http::serialize(res, req.method == "HEAD", req.wants_keep_alive());
  check(text.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // The first byte: how many bytes each read delivers (0: all at once).
  const size_t chunk = data[0] == 0 ? size : data[0];
  const char* p = reinterpret_cast<const char*>(data + 1);
  size_t left = size - 1;
  fervid::http::ParseLimits limits;
  limits.max_header_bytes = 4096;
  limits.max_headers = 32;
  limits.max_body_bytes = 65536;
  fervid::http::RequestParser parser(limits);
  for (int requests = 0; left > 0 && requests < 64;) {
    const size_t used = parser.feed(p, left < chunk ? left : chunk);
    check(used <= left);
    p += used;
    left -= used;
    const auto state = parser.state();
    if (state == fervid::http::RequestParser::State::kError) {
      const int s = parser.error_status();
      check(s >= 400 && s < 600 && !parser.error_message().empty());
      break;
    }
    if (state == fervid::http::RequestParser::State::kDone) {
      exercise(parser.request(), parser.content_length());
      parser.reset();
      ++requests;
    } else if (used == 0) {
      break;
    }
  }
  return 0;
}
