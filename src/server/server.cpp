// fervid::Server (server.h): routes, access checks and sessions over fervid::http (http.h).
#include "fervid/server.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <stdexcept>

#include "fervid/config_json.h"
#include "fervid/hash.h"
#include "fervid/image_io.h"
#include "fervid/json_text.h"
#include "http.h"
#include "page_html.h"  // kPageHtml, generated from page.html at configure time

namespace fervid {

namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// An error answered with its own status code and {"error": message}.
struct HttpError : std::runtime_error {
  HttpError(int s, const std::string& message) : std::runtime_error(message), status(s) {}
  int status;
};


void send_json(http::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(dump_json(body), "application/json");  // request strings may be any bytes
}

void send_error(http::Response& res, int status, const std::string& message) {
  send_json(res, status, {{"error", message}});
}

// A counting semaphore (C++17 has none): at most `n` holders at once.
class Slots {
 public:
  explicit Slots(int n) : free_(n) {}
  void acquire() {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait(lock, [&] { return free_ > 0; });
    --free_;
  }
  void release() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ++free_;
    }
    cv_.notify_one();
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  int free_;
};

class SlotGuard {
 public:
  explicit SlotGuard(Slots& s) : s_(s) { s_.acquire(); }
  ~SlotGuard() { s_.release(); }
  SlotGuard(const SlotGuard&) = delete;
  SlotGuard& operator=(const SlotGuard&) = delete;

 private:
  Slots& s_;
};

using http::lower;

// Query parameters: only the named ones are accepted (a typo is an error, not a silent default).
void check_params(const http::Request& req, const std::vector<std::string>& accepted) {
  for (const auto& [key, value] : req.params) {
    if (std::find(accepted.begin(), accepted.end(), key) != accepted.end()) continue;
    std::string list;
    for (const auto& a : accepted) list += (list.empty() ? "" : ", ") + a;
    throw HttpError(400, "unknown query parameter '" + key + "'" +
                             (list.empty() ? " (this endpoint takes none)" : " (accepted: " + list + ")"));
  }
}

bool bool_param(const http::Request& req, const std::string& key) {
  if (!req.has_param(key.c_str())) return false;
  const std::string v = lower(req.param(key.c_str()));
  if (v.empty() || v == "1" || v == "true" || v == "yes" || v == "on") return true;
  if (v == "0" || v == "false" || v == "no" || v == "off") return false;
  throw HttpError(400, "query parameter " + key + "=" + v + ": expected 1 or 0 (true or false)");
}

double number_param(const http::Request& req, const std::string& key, double lo, double hi) {
  const std::string v = req.param(key.c_str());
  char* end = nullptr;
  errno = 0;
  const double x = std::strtod(v.c_str(), &end);
  if (v.empty() || end != v.c_str() + v.size() || errno == ERANGE || !std::isfinite(x) || x < lo || x > hi) {
    throw HttpError(400, "query parameter " + key + "=" + v + ": expected a number in [" +
                             std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
  return x;
}

const char* const kImageTypes =
    "image/jpeg, image/png, image/webp, image/bmp (any image/*) or application/octet-stream, or "
    "multipart/form-data with a field named \"image\"";

// The image bytes of an upload: the raw body, or the multipart field "image" (copied into
// `storage`).
const std::string& image_bytes(const http::Request& req, std::string& storage) {
  const std::string type = req.media_type();
  if (type == "multipart/form-data") {
    std::vector<http::MultipartPart> parts;
    try {
      parts = http::parse_multipart(req.header("Content-Type"), req.body);
    } catch (const http::ParseError& e) {
      throw HttpError(400, std::string("malformed multipart upload: ") + e.what());
    }
    const auto it = std::find_if(parts.begin(), parts.end(), [](const auto& p) { return p.name == "image"; });
    if (it == parts.end()) throw HttpError(400, "multipart upload without a field named \"image\"");
    storage = std::move(it->content);
    if (storage.empty()) throw HttpError(400, "the multipart field \"image\" is empty");
    return storage;
  }
  if (!type.empty() && type.rfind("image/", 0) != 0 && type != "application/octet-stream") {
    throw HttpError(415, "Content-Type " + type + " is not an image; send " + kImageTypes);
  }
  if (req.body.empty())
    throw HttpError(400, std::string("empty body: send the image bytes as ") + kImageTypes);
  return req.body;
}

// Every class name -> how many of `labels` have it (zeros included, so a page can lay out all seven).
json label_counts(const std::vector<std::string>& names, const std::vector<int>& labels) {
  std::vector<int> n(names.size(), 0);
  for (int l : labels)
    if (l >= 0 && static_cast<size_t>(l) < n.size()) ++n[static_cast<size_t>(l)];
  json counts = json::object();
  for (size_t k = 0; k < names.size(); ++k) counts[names[k]] = n[k];
  return counts;
}


// One live stream: a VideoSession (not thread-safe) behind its own mutex.
struct Session {
  Session(std::string i, std::string c, const Analyzer& analyzer, const VideoOptions& o)
      : id(std::move(i)), client(std::move(c)), video(analyzer, o), created(Clock::now()), last_used(created) {}
  const std::string id;
  const std::string client;  // the address that created it (the per-client cap)
  std::mutex mutex;  // guards `video`
  VideoSession video;
  const Clock::time_point created;
  Clock::time_point last_used;  // guarded by Impl::sessions_mutex_
  int busy = 0;                 // requests using it now; guarded by Impl::sessions_mutex_
};

bool wildcard_host(const std::string& host) { return host.empty() || host == "0.0.0.0" || host == "::" || host == "[::]"; }

// A token travels in URLs, cookies and headers: URL-safe characters only.
bool token_characters_ok(const std::string& t) {
  return std::all_of(t.begin(), t.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~';
  });
}

// "Bearer abc" -> "abc"; "" when the header is absent or of another scheme.
std::string bearer_token(const http::Request& req) {
  const std::string h = req.header("Authorization");
  if (h.size() < 7 || lower(h.substr(0, 7)) != "bearer ") return "";
  std::string t = h.substr(7);
  while (!t.empty() && t.front() == ' ') t.erase(t.begin());
  return t;
}

// The value of cookie `name` in the request's Cookie headers, or "".
std::string cookie_value(const http::Request& req, const std::string& name) {
  for (const std::string& all : req.header_values("Cookie")) {
    size_t at = 0;
    while (at < all.size()) {
      size_t end = all.find(';', at);
      if (end == std::string::npos) end = all.size();
      std::string pair = all.substr(at, end - at);
      while (!pair.empty() && pair.front() == ' ') pair.erase(pair.begin());
      const size_t eq = pair.find('=');
      if (eq != std::string::npos && pair.compare(0, eq, name) == 0 && eq == name.size()) return pair.substr(eq + 1);
      at = end + 1;
    }
  }
  return "";
}

// A response may name the model's file, never where it lies on the server's disk.
std::string file_name(const std::string& path) { return std::filesystem::path(path).filename().string(); }

}  // namespace

std::string random_token() {
  std::random_device rd;
  char buf[33];
  for (int i = 0; i < 4; ++i) std::snprintf(buf + 8 * i, 9, "%08x", static_cast<unsigned>(rd()));
  return std::string(buf, 32);
}

bool is_loopback_host(const std::string& host) {
  if (host == "localhost" || host == "::1" || host == "[::1]") return true;
  in_addr a{};
  return ::inet_pton(AF_INET, host.c_str(), &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

VideoOptions session_options_from_json(const std::string& body, const VideoOptions& defaults) {
  VideoOptions vo = defaults;
  if (body.empty()) return vo;
  auto fail = [](const std::string& message) { throw std::invalid_argument("session options: " + message); };
  const json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) fail("expected a JSON object such as {\"every\": 2, \"smooth\": 0.6}");
  for (const auto& [key, value] : j.items()) {
    const bool integer = key != "smooth";
    if (key != "every" && key != "smooth" && key != "min_hits" && key != "full_scan_every")
      fail("unknown field '" + printable_utf8(key) + "' (accepted: every, smooth, min_hits, full_scan_every)");
    if (integer ? !value.is_number_integer() : !value.is_number())
      fail(key + " must be " + (integer ? "an integer" : "a number") + ", got " + dump_json(value));
    if (integer && (value.get<int64_t>() < -1'000'000'000 || value.get<int64_t>() > 1'000'000'000))
      fail(key + " must be an integer in [-1e9, 1e9], got " + dump_json(value));
    if (key == "every") vo.detect_every = value.get<int>();
    if (key == "smooth") vo.smoothing = value.get<double>();
    if (key == "min_hits") vo.min_hits = value.get<int>();
    if (key == "full_scan_every") vo.full_scan_every = value.get<int>();
  }
  vo.validate();  // invalid_argument naming the field
  return vo;
}

bool constant_time_equal(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const std::string& other = a.size() == b.size() ? b : a;  // compare a with itself: same time
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ other[i]);
  return diff == 0;
}

void ServerOptions::validate() const {
  auto fail = [](const std::string& field, const std::string& want, const std::string& got) {
    throw std::invalid_argument("ServerOptions::" + field + " must be " + want + ", got " + got);
  };
  if (port < 0 || port > 65535) fail("port", "in [0, 65535]", std::to_string(port));
  if (max_body_bytes < 1024) fail("max_body_bytes", ">= 1024", std::to_string(max_body_bytes));
  if (max_pixels < 1) fail("max_pixels", ">= 1", std::to_string(max_pixels));
  if (max_sessions < 0) fail("max_sessions", ">= 0", std::to_string(max_sessions));
  if (max_sessions_per_client < 1)
    fail("max_sessions_per_client", ">= 1", std::to_string(max_sessions_per_client));
  if (!(session_timeout_s > 0)) fail("session_timeout_s", "> 0", std::to_string(session_timeout_s));
  if (workers < 1) fail("workers", ">= 1", std::to_string(workers));
  if (http_threads < 1 || http_threads > 1024) fail("http_threads", "in [1, 1024]", std::to_string(http_threads));
  if (queue_depth < 0) fail("queue_depth", ">= 0", std::to_string(queue_depth));
  if (max_connections < 1) fail("max_connections", ">= 1", std::to_string(max_connections));
  if (max_requests_per_connection < 1)
    fail("max_requests_per_connection", ">= 1", std::to_string(max_requests_per_connection));
  if (max_header_bytes < 1024 || max_header_bytes > (int64_t{1} << 20))
    fail("max_header_bytes", "in [1024, 1048576]", std::to_string(max_header_bytes));
  auto timeout = [&](const char* field, double v) {
    if (!(v > 0 && v <= 86400)) fail(field, "in (0, 86400] seconds", std::to_string(v));
  };
  timeout("header_timeout_s", header_timeout_s);
  timeout("body_timeout_s", body_timeout_s);
  timeout("idle_timeout_s", idle_timeout_s);
  timeout("write_timeout_s", write_timeout_s);
  if (!token.empty() && (token.size() < 16 || !token_characters_ok(token))) {
    fail("token", "at least 16 characters of A-Z a-z 0-9 - _ . ~", std::to_string(token.size()) + " characters");
  }
  for (const auto& o : allowed_origins) {
    if (o.rfind("http://", 0) != 0 && o.rfind("https://", 0) != 0)
      fail("allowed_origins", "origins such as https://example.org", "'" + o + "'");
  }
  if (!is_loopback_host(host) && token.empty() && !insecure) {
    throw std::invalid_argument("ServerOptions::host " + (host.empty() ? std::string("(every interface)") : host) +
                                " is not loopback: other machines can reach the server, so it needs a token "
                                "(fervid serve --token), or insecure (--insecure) to serve without one");
  }
  video.validate();
}

std::string expression_css_color(int label) {
  const cv::Scalar bgr = expression_color(label);
  char buf[8];
  std::snprintf(buf, sizeof(buf), "#%02x%02x%02x", static_cast<int>(bgr[2]), static_cast<int>(bgr[1]),
                static_cast<int>(bgr[0]));
  return buf;
}

struct Server::Impl {
  Impl(std::shared_ptr<const Analyzer> a, ServerOptions o)
      : analyzer(std::move(a)),
        options(std::move(o)),
        slots(options.workers),
        started(Clock::now()),
        http(http_limits(options), handlers()) {
    if (!analyzer) throw std::invalid_argument("Server: no analyzer");
    model = describe_model();
  }

  static http::ServerLimits http_limits(const ServerOptions& o) {
    o.validate();
    http::ServerLimits l;
    l.parse.max_header_bytes = static_cast<size_t>(o.max_header_bytes);
    l.parse.max_body_bytes = o.max_body_bytes;
    l.header_timeout_s = o.header_timeout_s;
    l.body_timeout_s = o.body_timeout_s;
    l.idle_timeout_s = o.idle_timeout_s;
    l.write_timeout_s = o.write_timeout_s;
    l.max_connections = o.max_connections;
    l.max_requests_per_connection = o.max_requests_per_connection;
    l.threads = o.http_threads;
    l.queue_depth = o.queue_depth;
    return l;
  }

  const std::shared_ptr<const Analyzer> analyzer;
  ServerOptions options;
  json model;
  Slots slots;
  const Clock::time_point started;
  http::HttpServer http;

  std::mutex run_mutex;
  std::condition_variable run_cv;
  int bound_port = 0;

  mutable std::mutex sessions_mutex;
  std::map<std::string, std::shared_ptr<Session>> sessions;

  const std::vector<std::string>& names() const { return analyzer->class_names(); }

  json describe_model() const {
    const Classifier& c = analyzer->classifier();
    json colors = json::object();
    for (size_t k = 0; k < names().size(); ++k)
      colors[names()[k]] = expression_css_color(static_cast<int>(k));
    return {{"fervid_version", FERVID_VERSION},
            {"file", file_name(c.model_path())},
            {"sha256", sha256_file(c.model_path())},
            {"classes", names()},
            {"colors", colors},
            {"input_size", c.input_size()},
            {"variant", std::string(to_string(c.config().variant))},
            {"width", c.config().width},
            {"config", config_to_json(c.config())},
            {"metadata", public_metadata(c.metadata())},
            {"faces", to_json(analyzer->recipe())},  // the recipe in effect: the model's, then `fervid serve`'s flags
            {"model_face_recipe", to_json(analyzer->model_recipe())},
            {"analyze_parameters", analyze_parameters()},
            {"limits",
             {{"max_body_bytes", options.max_body_bytes},
              {"max_pixels", options.max_pixels},
              {"max_sessions", options.max_sessions},
              {"session_timeout_s", options.session_timeout_s}}}};
  }

  // The model file's metadata without what names the training machine's disk (the command
  // line, the data path, the whole training configuration): file names only.
  static json public_metadata(json m) {
    if (!m.is_object()) return m;
    m.erase("command");
    m.erase("train_config");
    if (m.contains("data") && m["data"].is_string()) m["data"] = file_name(m["data"].get<std::string>());
    if (m.contains("init_from") && m["init_from"].is_string()) m["init_from"] = file_name(m["init_from"].get<std::string>());
    return m;
  }

  // POST /v1/analyze's query parameters: whole_image, and the face recipe's per-request options
  // (how faces are found; how they are cut is the model's).
  static std::vector<std::string> analyze_parameters() {
    std::vector<std::string> names = {"whole_image"};
    for (const auto& o : face_recipe_options()) {
      if (o.per_request) names.push_back(o.name);
    }
    return names;
  }

  // ---- routing ------------------------------------------------------------------------------

  enum class Endpoint { kNone, kPage, kHealth, kModel, kAnalyze, kSessions, kSession, kFrames };

  static Endpoint match(const std::string& path, std::string* id) {
    if (path == "/" || path == "/index.html") return Endpoint::kPage;
    if (path == "/health") return Endpoint::kHealth;
    if (path == "/v1/model") return Endpoint::kModel;
    if (path == "/v1/analyze") return Endpoint::kAnalyze;
    if (path == "/v1/sessions") return Endpoint::kSessions;
    static const std::string prefix = "/v1/sessions/", frames = "/frames";
    if (path.rfind(prefix, 0) != 0 || path.size() == prefix.size()) return Endpoint::kNone;
    std::string rest = path.substr(prefix.size());
    Endpoint e = Endpoint::kSession;
    if (rest.size() > frames.size() &&
        rest.compare(rest.size() - frames.size(), frames.size(), frames) == 0) {
      rest.resize(rest.size() - frames.size());
      e = Endpoint::kFrames;
    }
    if (rest.empty() || rest.find('/') != std::string::npos) return Endpoint::kNone;
    *id = rest;
    return e;
  }

  static const char* allowed(Endpoint e) {
    switch (e) {
      case Endpoint::kPage:
      case Endpoint::kHealth:
      case Endpoint::kModel:
        return "GET, HEAD";
      case Endpoint::kAnalyze:
      case Endpoint::kSessions:
      case Endpoint::kFrames:
        return "POST";
      case Endpoint::kSession:
        return "GET, HEAD, DELETE";
      case Endpoint::kNone:
        break;
    }
    return "";
  }

  // Quick endpoints (the page, /health, /v1/model, and what is answered without work: a wrong
  // path or method) are answered on the I/O thread; the rest waits for a worker.
  static bool quick_endpoint(const http::Request& req) {
    std::string id;
    const Endpoint e = match(req.path, &id);
    const std::string method = req.method == "HEAD" ? "GET" : req.method;
    return e == Endpoint::kNone || e == Endpoint::kPage || e == Endpoint::kHealth || e == Endpoint::kModel ||
           std::string(allowed(e)).find(method) == std::string::npos;
  }

  http::Handlers handlers() {
    http::Handlers h;
    h.screen = [this](const http::Request& req, http::Response& res) { return refused(req, res); };
    h.quick = [this](const http::Request& req, http::Response& res) {
      if (!quick_endpoint(req)) return false;
      dispatch(req, res, nullptr);
      return true;
    };
    h.work = [this](const http::Request& req, http::Response& res, const std::atomic<bool>& cancelled) {
      dispatch(req, res, &cancelled);
    };
    h.error = [](int status, const std::string& message, http::Response& res) { send_error(res, status, message); };
    h.log = [this](const http::Request& req, const http::Response& res, double ms) {
      if (!options.log) return;
      char text[32];
      std::snprintf(text, sizeof(text), "%.1f ms", ms);
      options.log(printable_utf8(req.method.empty() ? "-" : req.method) + " " +
                  printable_utf8(req.path.empty() ? "-" : req.path) + " " + std::to_string(res.status) + " " + text);
    };
    return h;
  }

  // `cancelled` (null on the I/O thread): the client has gone; work not yet begun is skipped.
  void dispatch(const http::Request& req, http::Response& res, const std::atomic<bool>* cancelled) {
    try {
      std::string id;
      const Endpoint e = match(req.path, &id);
      if (e == Endpoint::kNone)
        throw HttpError(404, "no such path: " + req.path + " (see GET / for the API)");
      const std::string method = req.method == "HEAD" ? "GET" : req.method;
      if (std::string(allowed(e)).find(method) == std::string::npos) {
        res.set_header("Allow", allowed(e));
        throw HttpError(405,
                        req.method + " is not allowed on " + req.path + " (allowed: " + allowed(e) + ")");
      }
      switch (e) {
        case Endpoint::kPage:
          check_params(req, {"token"});  // the printed URL's; checked (and turned into a cookie) before routing
          res.set_content(kPageHtml, "text/html; charset=utf-8");
          break;
        case Endpoint::kHealth:
          check_params(req, {});
          health(res);
          break;
        case Endpoint::kModel:
          check_params(req, {});
          send_json(res, 200, model);
          break;
        case Endpoint::kAnalyze:
          analyze(req, res, cancelled);
          break;
        case Endpoint::kSessions:
          create_session(req, res);
          break;
        case Endpoint::kSession:
          check_params(req, {});
          if (method == "DELETE")
            delete_session(id, res);
          else
            session_summary(id, res);
          break;
        case Endpoint::kFrames:
          frame(id, req, res, cancelled);
          break;
        case Endpoint::kNone:
          break;
      }
    } catch (const HttpError& err) {
      send_error(res, err.status, err.what());
    } catch (const ImageTooLargeError& err) {  // a header claiming more than max_pixels
      send_error(res, 413, err.what());
    } catch (const DataError& err) {  // undecodable, truncated, not an image
      send_error(res, 400, err.what());
    } catch (const std::invalid_argument& err) {  // bad options, a time going backwards
      send_error(res, 400, err.what());
    } catch (const std::exception& err) {
      send_error(res, 500, std::string("internal error: ") + err.what());
    }
  }

  // ---- who may use it ----------------------------------------------------------------------

  std::string cookie_name() const { return "fervid_token_" + std::to_string(bound_port); }

  // The Host values that name this server.
  bool host_allowed(const std::string& given) const {
    if (wildcard_host(options.host)) return true;  // every interface: any name may reach it (the token guards)
    const std::string h = lower(given), port = ":" + std::to_string(bound_port);
    auto with_port = [&](const std::string& name) { return h == name + port || (bound_port == 80 && h == name); };
    if (with_port("127.0.0.1") || with_port("localhost") || with_port("[::1]")) return true;
    const std::string bound = options.host.find(':') != std::string::npos && options.host.front() != '['
                                  ? "[" + lower(options.host) + "]"
                                  : lower(options.host);
    if (with_port(bound)) return true;
    for (const auto& a : options.allowed_hosts) {
      if (h == lower(a) || with_port(lower(a))) return true;
    }
    return false;
  }

  bool origin_allowed(const std::string& origin, const std::string& host) const {
    if (origin == "http://" + lower(host) || origin == "https://" + lower(host)) return true;
    for (const auto& o : options.allowed_origins) {
      if (lower(o) == origin) return true;
    }
    return false;
  }

  // Answers (and returns true for) a request that may not be served: bad framing, a foreign
  // Host, another origin, no token.
  bool refused(const http::Request& req, http::Response& res) {
    const std::string host = req.header("Host");
    if (!host.empty() && !host_allowed(host)) {
      send_error(res, 421, "this server is not '" + printable_utf8(host) +
                               "' (a page reaching it under another name is refused; fervid serve --allow-host "
                               "adds a name)");
      return true;
    }
    const std::string origin = lower(req.header("Origin"));
    const std::string site = lower(req.header("Sec-Fetch-Site"));
    const bool navigation = lower(req.header("Sec-Fetch-Mode")) == "navigate" && req.method == "GET";
    if ((!origin.empty() && !origin_allowed(origin, host.empty() ? "127.0.0.1:" + std::to_string(bound_port) : host)) ||
        (origin.empty() && !navigation && (site == "cross-site" || site == "same-site"))) {
      send_error(res, 403, "requests from another site's page are refused (origin " +
                               printable_utf8(origin.empty() ? site : origin) +
                               "; fervid serve --allow-origin admits one)");
      return true;
    }
    if (options.token.empty() || req.path == "/health") return false;
    const bool page = req.path == "/" || req.path == "/index.html";
    if (page && req.has_param("token")) {
      if (!constant_time_equal(req.param("token"), options.token)) {
        res.status = 401;
        res.set_content(kTokenPage, "text/html; charset=utf-8");
        return true;
      }
      // The cookie carries the token from now on; the address bar keeps none.
      res.status = 303;
      res.set_header("Location", "/");
      res.set_header("Set-Cookie", cookie_name() + "=" + options.token + "; Path=/; HttpOnly; SameSite=Strict");
      res.set_content("", "text/plain");
      return true;
    }
    const std::string bearer = bearer_token(req), cookie = cookie_value(req, cookie_name());
    if ((!bearer.empty() && constant_time_equal(bearer, options.token)) ||
        (!cookie.empty() && constant_time_equal(cookie, options.token))) {
      return false;
    }
    if (page) {
      res.status = 401;
      res.set_content(kTokenPage, "text/html; charset=utf-8");
    } else {
      send_error(res, 401,
                 "this server needs its token: send \"Authorization: Bearer <token>\", or open the address "
                 "fervid serve printed (it ends in ?token=...) in the browser");
    }
    return true;
  }

  static constexpr const char* kTokenPage =
      "<!doctype html><meta charset=utf-8><title>fervid: token needed</title>"
      "<p>This fervid server needs its access token. Open the address that <code>fervid serve</code> printed "
      "when it started: it ends in <code>?token=...</code>.</p>";

  // ---- images -------------------------------------------------------------------------------

  // Decodes an upload: decode_image refuses a header claiming more than max_pixels before
  // decoding (ImageTooLargeError -> 413) and non-image data (DataError -> 400).
  cv::Mat decode(const std::string& bytes, const std::string& where) const {
    ImageReadOptions read;
    read.color = ImageColor::kBgr;
    read.max_pixels = options.max_pixels;
    return decode_image(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), where, read);
  }

  // ---- endpoints ----------------------------------------------------------------------------

  void health(http::Response& res) {
    // Constructed only with a loaded model: answering at all means ready.
    send_json(res, 200,
              {{"status", "ok"},
               {"model", file_name(analyzer->classifier().model_path())},
               {"fervid_version", FERVID_VERSION},
               {"sessions", live_sessions()},
               {"max_sessions", options.max_sessions},
               {"uptime_s", ms_since(started) / 1000}});
  }

  // Skips work whose client has gone (its answer would be dropped).
  static void check_cancelled(const std::atomic<bool>* cancelled) {
    if (cancelled && *cancelled) throw HttpError(499, "the client closed the connection");
  }

  void analyze(const http::Request& req, http::Response& res, const std::atomic<bool>* cancelled) {
    std::string storage;
    const std::string& bytes = image_bytes(req, storage);
    static const std::vector<std::string> accepted = analyze_parameters();
    check_params(req, accepted);
    const bool whole = bool_param(req, "whole_image");
    // Detection settings for this request over the server's (the table checks each value:
    // "query parameter min_face must be an integer in [1, 100000], got -3").
    FaceRecipe request = analyzer->recipe();
    const RecipeOption* given = nullptr;
    for (const auto& o : face_recipe_options()) {
      if (!o.per_request || !req.has_param(o.name.c_str())) continue;
      o.set_text(request, req.param(o.name.c_str()), "query parameter " + o.name);
      given = &o;
    }
    check_face_recipe(request, recipe_query_where());
    if (whole && given)
      throw HttpError(400, "query parameter " + given->name + " does not apply to whole_image=1 (no detection)");
    SlotGuard slot(slots);
    check_cancelled(cancelled);
    const auto t0 = Clock::now();
    const cv::Mat image = decode(bytes, "upload");
    std::vector<FaceExpression> faces;
    if (whole)
      faces.push_back(analyzer->analyze_whole(image));
    else if (given)
      faces = analyzer->analyze(image, request);
    else
      faces = analyzer->analyze(image);
    json out = {{"width", image.cols}, {"height", image.rows}, {"faces", json::array()}};
    std::vector<int> labels;
    for (const auto& f : faces) {
      out["faces"].push_back(to_json(f, names()));
      labels.push_back(f.label);
    }
    out["counts"] = label_counts(names(), labels);
    out["elapsed_ms"] = ms_since(t0);
    send_json(res, 200, out);
  }

  // ---- sessions -----------------------------------------------------------------------------

  // Removes sessions idle past the timeout (not those in use). Caller holds sessions_mutex.
  void sweep(Clock::time_point now) {
    const auto timeout = std::chrono::duration<double>(options.session_timeout_s);
    for (auto it = sessions.begin(); it != sessions.end();) {
      if (it->second->busy == 0 && now - it->second->last_used > timeout)
        it = sessions.erase(it);
      else
        ++it;
    }
  }

  int live_sessions() {
    std::lock_guard<std::mutex> lock(sessions_mutex);
    sweep(Clock::now());
    return static_cast<int>(sessions.size());
  }

  // Marks a session in use for the guard's lifetime (the sweep leaves it alone), then touches it.
  class SessionUse {
   public:
    SessionUse(Impl& impl, const std::string& id) : impl_(impl) {
      std::lock_guard<std::mutex> lock(impl_.sessions_mutex);
      const auto now = Clock::now();
      impl_.sweep(now);
      const auto it = impl_.sessions.find(id);
      if (it == impl_.sessions.end()) {
        throw HttpError(404, "no session " + id + " (never created, deleted, or removed after " +
                                 json(impl_.options.session_timeout_s).dump() + " s without frames)");
      }
      session_ = it->second;
      ++session_->busy;
      session_->last_used = now;
    }
    ~SessionUse() {
      std::lock_guard<std::mutex> lock(impl_.sessions_mutex);
      --session_->busy;
      session_->last_used = Clock::now();
    }
    SessionUse(const SessionUse&) = delete;
    SessionUse& operator=(const SessionUse&) = delete;
    Session& operator*() const { return *session_; }
    Session* operator->() const { return session_.get(); }

   private:
    Impl& impl_;
    std::shared_ptr<Session> session_;
  };

  static json video_options_json(const VideoOptions& v) {
    return {{"every", v.detect_every},
            {"smooth", v.smoothing},
            {"min_hits", v.min_hits},
            {"full_scan_every", v.full_scan_every}};
  }

  void create_session(const http::Request& req, http::Response& res) {
    check_params(req, {});
    if (req.body.size() > 4096) throw HttpError(413, "session options: more than 4096 bytes of JSON");
    const VideoOptions vo = session_options_from_json(req.body, options.video);
    std::string id;
    {
      std::lock_guard<std::mutex> lock(sessions_mutex);
      sweep(Clock::now());
      const int mine = static_cast<int>(std::count_if(sessions.begin(), sessions.end(), [&](const auto& e) {
        return e.second->client == req.remote_addr;
      }));
      if (mine >= options.max_sessions_per_client) {
        res.set_header("Retry-After", std::to_string(static_cast<int>(std::ceil(options.session_timeout_s))));
        throw HttpError(429, "this client has " + std::to_string(mine) +
                                 " live sessions, the most one client may hold; end one (DELETE /v1/sessions/{id})");
      }
      if (static_cast<int>(sessions.size()) >= options.max_sessions) {
        res.set_header("Retry-After", std::to_string(static_cast<int>(std::ceil(options.session_timeout_s))));
        throw HttpError(
            503, "all " + std::to_string(options.max_sessions) +
                     " live sessions are in use; end one (DELETE /v1/sessions/{id}) or wait for an idle "
                     "one to time out");
      }
      do id = random_token();
      while (sessions.count(id));
      sessions.emplace(id, std::make_shared<Session>(id, req.remote_addr, *analyzer, vo));
    }
    json out = video_options_json(vo);
    out["id"] = id;
    out["url"] = "/v1/sessions/" + id;
    out["frames_url"] = "/v1/sessions/" + id + "/frames";
    out["timeout_s"] = options.session_timeout_s;
    send_json(res, 201, out);
  }

  void frame(const std::string& id, const http::Request& req, http::Response& res,
             const std::atomic<bool>* cancelled) {
    std::string storage;
    const std::string& bytes = image_bytes(req, storage);
    check_params(req, {"t"});
    const bool has_t = req.has_param("t");
    const double t_given = has_t ? number_param(req, "t", 0, 1e9) : 0.0;
    SessionUse session(*this, id);
    // Session first, then a worker slot: a frame waiting for its session holds no slot.
    std::lock_guard<std::mutex> lock(session->mutex);
    SlotGuard slot(slots);
    check_cancelled(cancelled);
    const auto t0 = Clock::now();
    const cv::Mat image = decode(bytes, "frame");
    // Taken under the session's lock: times stay non-decreasing whatever order frames arrive in.
    const double t = has_t ? t_given : std::chrono::duration<double>(t0 - session->created).count();
    const auto faces = session->video.process(image, t);
    const int64_t index = session->video.frames() - 1;
    json out = {{"session", id},       {"frame", index},       {"time", t},
                {"width", image.cols}, {"height", image.rows}, {"faces", json::array()}};
    std::vector<int> labels;
    for (const auto& f : faces) {
      out["faces"].push_back(frame_record(f, index, t, names()));
      labels.push_back(f.label);
    }
    out["counts"] = label_counts(names(), labels);
    out["active_tracks"] = session->video.active_tracks();
    out["elapsed_ms"] = ms_since(t0);
    send_json(res, 200, out);
  }

  // Caller holds the session's mutex.
  json summary_json(Session& s) const {
    const VideoSession& v = s.video;
    json tracks = json::array();
    std::vector<int> dominant;
    for (const auto& summary : v.summaries()) {
      tracks.push_back(to_json(summary, names()));
      dominant.push_back(summary.dominant);
    }
    // The room over the whole session: share of all face-frames per (smoothed) expression.
    std::vector<int64_t> frames(names().size(), 0);
    int64_t total = 0;
    for (const auto& t : v.timelines())
      for (size_t k = 0; k < frames.size() && k < t.label_frames.size(); ++k) {
        frames[k] += t.label_frames[k];
        total += t.label_frames[k];
      }
    json share = json::object();
    for (size_t k = 0; k < names().size(); ++k)
      share[names()[k]] = total > 0 ? static_cast<double>(frames[k]) / static_cast<double>(total) : 0.0;
    const auto& st = v.stats();
    json out = {{"id", s.id},
                {"frames", v.frames()},
                {"active_tracks", v.active_tracks()},
                {"age_s", ms_since(s.created) / 1000},
                {"options", video_options_json(v.options())},
                {"tracks", tracks},
                {"dominant_counts", label_counts(names(), dominant)},
                {"share", share},
                {"stats",
                 {{"frames", st.frames},
                  {"detection_frames", st.detection_frames},
                  {"full_scans", st.full_scans},
                  {"faces", st.faces},
                  {"cuts", st.cuts},
                  {"mean_ms", st.frames > 0 ? 1000 * st.total_s / static_cast<double>(st.frames) : 0.0}}}};
    return out;
  }

  void session_summary(const std::string& id, http::Response& res) {
    SessionUse session(*this, id);
    std::lock_guard<std::mutex> lock(session->mutex);
    send_json(res, 200, summary_json(*session));
  }

  void delete_session(const std::string& id, http::Response& res) {
    json out;
    {
      SessionUse session(*this, id);
      std::lock_guard<std::mutex> lock(session->mutex);
      out = summary_json(*session);
    }
    {
      std::lock_guard<std::mutex> lock(sessions_mutex);
      sessions.erase(id);  // a frame still in flight keeps its Session alive until it is answered
    }
    out["deleted"] = true;
    send_json(res, 200, out);
  }

  // ---- lifetime -----------------------------------------------------------------------------

  int bind() {
    std::lock_guard<std::mutex> lock(run_mutex);
    if (bound_port == 0) bound_port = http.bind(options.host, options.port);
    return bound_port;
  }

  void run() {
    bind();
    http.run();
  }

  void stop() { http.stop(); }
};

Server::Server(std::shared_ptr<const Analyzer> analyzer, ServerOptions options)
    : impl_(std::make_unique<Impl>(std::move(analyzer), std::move(options))) {}
Server::~Server() { impl_->stop(); }
int Server::bind() { return impl_->bind(); }
void Server::run() { impl_->run(); }
void Server::stop() { impl_->stop(); }
int Server::port() const {
  std::lock_guard<std::mutex> lock(impl_->run_mutex);
  return impl_->bound_port;
}
int Server::sessions() const { return impl_->live_sessions(); }
const ServerOptions& Server::options() const { return impl_->options; }

}  // namespace fervid
