// fervid::Server end to end over HTTP (cpp-httplib's client), with the shipped model and the demo
// image (no dataset): the same faces as Analyzer::analyze, errors as JSON with the right status,
// live sessions with stable track ids, the limits (body, pixels, sessions, idle time),
// concurrent clients, and `fervid serve` itself (a taken port; start, request log, SIGTERM).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <opencv2/imgcodecs.hpp>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iterator>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "fervid/analyzer.h"
#include "fervid/image_io.h"
#include "fervid/model_io.h"
#include "fervid/server.h"
#include "vision/vision_test_util.h"

extern char** environ;

namespace fervid {
namespace {

using nlohmann::json;

const std::string kModel = std::string(FERVID_SOURCE_DIR) + "/models/fervid-default.fervid";
const std::string kImage = std::string(FERVID_SOURCE_DIR) + "/examples/astronaut.png";

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string as_string(const std::vector<uint8_t>& v) { return std::string(v.begin(), v.end()); }

std::shared_ptr<const Analyzer> shared_analyzer() {
  static const auto analyzer = [] {
    const AnalyzerOptions
        options;  // a named object: GCC 12 warns (falsely) about the default argument's temporary
    return std::make_shared<const Analyzer>(kModel, options);
  }();
  return analyzer;
}

json parse(const httplib::Result& r) {
  if (!r) throw std::runtime_error("no answer: " + httplib::to_string(r.error()));
  return json::parse(r->body);
}

// A server on an ephemeral port, served from a thread for the test's lifetime.
class ServerTest : public ::testing::Test {
 protected:
  void start(ServerOptions options = {}) {
    options.host = "127.0.0.1";
    options.port = 0;
    server_ = std::make_unique<Server>(shared_analyzer(), options);
    port_ = server_->bind();
    thread_ = std::thread([this] { server_->run(); });
    client_ = client();
  }
  std::unique_ptr<httplib::Client> client() const {
    auto c = std::make_unique<httplib::Client>("127.0.0.1", port_);
    c->set_read_timeout(120);
    c->set_tcp_nodelay(true);
    return c;
  }
  void TearDown() override {
    if (!server_) return;
    server_->stop();
    thread_.join();
  }
  // {status, parsed body}; every answer must be JSON.
  std::pair<int, json> post(const std::string& path, const std::string& body,
                            const std::string& type = "image/png") {
    auto r = client_->Post(path.c_str(), body, type.c_str());
    const json j = parse(r);
    EXPECT_EQ(r->get_header_value("Content-Type"), "application/json") << path;
    return {r->status, j};
  }
  std::pair<int, json> get(const std::string& path) {
    auto r = client_->Get(path.c_str());
    return {r ? r->status : -1, parse(r)};
  }
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string create_session(const std::string& options = "{}") {
    const auto [status, j] = post("/v1/sessions", options, "application/json");
    EXPECT_EQ(status, 201) << j.dump();
    return j.value("id", "");
  }

  std::unique_ptr<Server> server_;
  std::thread thread_;
  int port_ = 0;
  std::unique_ptr<httplib::Client> client_;
};

// The answer's faces against Analyzer::analyze on the same image: boxes, labels, probabilities.
void expect_same_faces(const json& faces, const std::vector<FaceExpression>& want,
                       const std::vector<std::string>& names) {
  ASSERT_EQ(faces.size(), want.size()) << faces.dump();
  for (size_t i = 0; i < want.size(); ++i) {
    const auto& f = faces[i];
    EXPECT_EQ(f["box"]["x"], want[i].box.x);
    EXPECT_EQ(f["box"]["y"], want[i].box.y);
    EXPECT_EQ(f["box"]["w"], want[i].box.width);
    EXPECT_EQ(f["box"]["h"], want[i].box.height);
    EXPECT_EQ(f["label"], want[i].label_name);
    EXPECT_NEAR(f["confidence"].get<double>(), want[i].confidence, 1e-5);
    for (size_t k = 0; k < names.size(); ++k)
      EXPECT_NEAR(f["probs"][names[k]].get<double>(), want[i].probs[k], 1e-5);
  }
}

TEST_F(ServerTest, HealthModelAndPage) {
  start();
  const auto [hs, health] = get("/health");
  EXPECT_EQ(hs, 200);
  EXPECT_EQ(health["status"], "ok");
  EXPECT_EQ(health["sessions"], 0);

  const auto [ms, model] = get("/v1/model");
  EXPECT_EQ(ms, 200);
  EXPECT_EQ(model["classes"].get<std::vector<std::string>>(), shared_analyzer()->class_names());
  ASSERT_EQ(model["classes"].size(), 7u);
  EXPECT_EQ(model["colors"].size(), 7u);
  EXPECT_EQ(model["colors"]["happy"], "#ffd200");  // expression_color(3) is BGR (0, 210, 255)
  EXPECT_EQ(model["input_size"], 48);
  EXPECT_EQ(model["variant"], "mcsa");
  EXPECT_EQ(model["sha256"].get<std::string>().size(), 64u);
  // The model's file by name: no answer says where anything lies on the server's disk.
  EXPECT_EQ(model["file"], "fervid-default.fervid");
  EXPECT_FALSE(model.contains("path"));
  EXPECT_EQ(health["model"], "fervid-default.fervid");
  for (const auto* path : {"/health", "/v1/model"}) {
    const auto r = client_->Get(path);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body.find(FERVID_SOURCE_DIR), std::string::npos) << path << ": " << r->body;
    EXPECT_EQ(r->body.find("/work/"), std::string::npos) << path << ": " << r->body;
  }
  // The face recipe in effect (the model's, then the server's flags), the file's, and what a
  // request may set.
  EXPECT_EQ(model["faces"], to_json(shared_analyzer()->recipe()));
  EXPECT_EQ(model["model_face_recipe"], to_json(read_face_recipe(kModel)));
  EXPECT_EQ(model["faces"].size(), face_recipe_options().size());
  const auto params = model["analyze_parameters"].get<std::vector<std::string>>();
  EXPECT_NE(std::find(params.begin(), params.end(), "min_face"), params.end());
  EXPECT_NE(std::find(params.begin(), params.end(), "whole_image"), params.end());
  EXPECT_EQ(std::find(params.begin(), params.end(), "margin"), params.end());

  auto page = client_->Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_EQ(page->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_NE(page->body.find("<title>fervid"), std::string::npos);
  EXPECT_NE(page->body.find("/v1/analyze"), std::string::npos);
  EXPECT_NE(page->body.find("/v1/sessions"), std::string::npos);
  EXPECT_NE(page->body.find("</html>"), std::string::npos);  // the whole file, not a prefix
}

TEST(ServerColors, CssFromBgr) {
  EXPECT_EQ(expression_css_color(0), "#dc2828");  // BGR (40, 40, 220)
  EXPECT_EQ(expression_css_color(6), "#aaaaaa");
  EXPECT_EQ(expression_css_color(-1), "#ffffff");
}

TEST_F(ServerTest, AnalyzeGivesTheAnalyzersFaces) {
  start();
  const auto want = shared_analyzer()->analyze(read_image(kImage));
  ASSERT_FALSE(want.empty());
  const auto& names = shared_analyzer()->class_names();
  const std::string bytes = file_bytes(kImage);

  for (const char* type : {"image/png", "application/octet-stream"}) {
    const auto [status, j] = post("/v1/analyze", bytes, type);
    ASSERT_EQ(status, 200) << j.dump();
    EXPECT_EQ(j["width"], 512);
    EXPECT_EQ(j["height"], 512);
    expect_same_faces(j["faces"], want, names);
    EXPECT_GE(j["elapsed_ms"].get<double>(), 0.0);
    int counted = 0;
    for (const auto& [name, n] : j["counts"].items()) counted += n.get<int>();
    EXPECT_EQ(counted, static_cast<int>(want.size()));
    EXPECT_EQ(j["counts"][want[0].label_name].get<int>() >= 1, true);
  }

  // The browser's form upload: multipart/form-data, field "image".
  httplib::MultipartFormDataItems items = {{"image", bytes, "astronaut.png", "image/png"}};
  auto r = client_->Post("/v1/analyze", items);
  const json j = parse(r);
  ASSERT_EQ(r->status, 200) << j.dump();
  expect_same_faces(j["faces"], want, names);

  // Detection settings per request (the face recipe's per-request options): min_face finds no
  // face under 400 px (the astronaut's face is about 92 px); the server's own settings stay.
  const auto [s2, big] = post("/v1/analyze?min_face=400", bytes);
  EXPECT_EQ(s2, 200);
  EXPECT_TRUE(big["faces"].empty());
  FaceRecipe request = shared_analyzer()->recipe();
  request.min_face = 20;
  request.max_face = 300;
  const auto [s3, sized] = post("/v1/analyze?min_face=20&max_face=300", bytes);
  EXPECT_EQ(s3, 200) << sized.dump();
  expect_same_faces(sized["faces"], shared_analyzer()->analyze(read_image(kImage), request), names);
  const auto [s4, again] = post("/v1/analyze", bytes);
  expect_same_faces(again["faces"], want, names);
}

TEST_F(ServerTest, WholeImageIsOneFaceWithoutMargin) {
  start();
  // A face crop, classified as `fervid predict --whole-image` does: no margin, no shift, no
  // detection.
  const cv::Mat crop = read_image(kImage)(cv::Rect(160, 50, 130, 130)).clone();
  AnalyzerOptions o;
  o.recipe.set("margin", 0);
  o.recipe.set("offset_y", 0);
  const Analyzer whole(kModel, o);
  const auto want = whole.analyze_boxes(crop, {cv::Rect(0, 0, crop.cols, crop.rows)});
  const auto [status, j] = post("/v1/analyze?whole_image=1", as_string(test::encode(crop, ".png")));
  ASSERT_EQ(status, 200) << j.dump();
  expect_same_faces(j["faces"], want, whole.class_names());
}

TEST_F(ServerTest, BadInputIsAnsweredWithItsStatusAndReason) {
  ServerOptions o;
  o.max_body_bytes = 1 << 20;
  start(o);
  const std::string png = file_bytes(kImage);  // 788 KB
  ASSERT_LT(static_cast<int64_t>(png.size()), o.max_body_bytes);

  auto expect_error = [](const std::pair<int, json>& got, int status, const std::string& says) {
    EXPECT_EQ(got.first, status) << got.second.dump();
    ASSERT_TRUE(got.second.contains("error")) << got.second.dump();
    EXPECT_NE(got.second["error"].get<std::string>().find(says), std::string::npos) << got.second.dump();
  };
  expect_error(post("/v1/analyze", "hello, this is not an image at all"), 400, "not an image");
  expect_error(post("/v1/analyze", png.substr(0, png.size() / 2)), 400, "png");  // truncated
  // 30000 x 30000 claimed in a few dozen bytes: refused from the header, never decoded.
  expect_error(post("/v1/analyze", as_string(test::crafted_png(30000, 30000))), 413, "30000 x 30000");
  expect_error(post("/v1/analyze", std::string(static_cast<size_t>(o.max_body_bytes) + 1, 'x')), 413,
               "limit");
  expect_error(post("/v1/analyze", png, "text/plain"), 415, "text/plain");
  expect_error(post("/v1/analyze", "", "image/png"), 400, "empty body");
  expect_error(post("/v1/analyze?wholeimage=1", png), 400, "wholeimage");
  expect_error(post("/v1/analyze?whole_image=maybe", png), 400, "whole_image");
  // Detection settings are checked by the face recipe's table, named as query parameters.
  expect_error(post("/v1/analyze?min_face=-3", png), 400,
               "query parameter min_face must be an integer in [1, 100000], got -3");
  expect_error(post("/v1/analyze?scale_step=3", png), 400, "query parameter scale_step must be in (1, 2], got 3");
  expect_error(post("/v1/analyze?min_face=50&max_face=20", png), 400,
               "query parameter max_face (20) is smaller than query parameter min_face (50)");
  expect_error(post("/v1/analyze?margin=0.3", png), 400, "unknown query parameter 'margin'");  // the model's
  expect_error(post("/v1/analyze?whole_image=1&min_face=40", png), 400, "min_face does not apply to whole_image=1");
  httplib::MultipartFormDataItems items = {{"photo", png, "a.png", "image/png"}};
  auto r = client_->Post("/v1/analyze", items);
  expect_error({r->status, parse(r)}, 400, "\"image\"");

  expect_error(get("/nope"), 404, "/nope");
  expect_error(post("/v1/nope", png), 404, "/v1/nope");
  auto g = client_->Get("/v1/analyze");
  expect_error({g->status, parse(g)}, 405, "GET");
  EXPECT_EQ(g->get_header_value("Allow"), "POST");
  auto d = client_->Delete("/health");
  expect_error({d->status, parse(d)}, 405, "DELETE");
  expect_error(get("/v1/sessions/00112233445566778899aabbccddeeff"), 404, "no session");
  expect_error(post("/v1/sessions/00112233445566778899aabbccddeeff/frames", png), 404, "no session");

  // No face: an answer, not an error.
  const cv::Mat gray(240, 320, CV_8UC3, cv::Scalar(128, 128, 128));
  const auto [status, j] = post("/v1/analyze", as_string(test::encode(gray, ".jpg")), "image/jpeg");
  EXPECT_EQ(status, 200);
  EXPECT_TRUE(j["faces"].empty());
  EXPECT_EQ(j["counts"]["happy"], 0);
  // The server still answers after all that.
  EXPECT_EQ(get("/health").first, 200);
}

// Sends `request` as it is (Connection: close) and returns everything the server answers;
// from the loopback address `from` when given (127.0.0.2: another client).
std::string raw_exchange(int port, const std::string& request, const char* from = nullptr) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (from != nullptr) {
    sockaddr_in src{};
    src.sin_family = AF_INET;
    ::inet_pton(AF_INET, from, &src.sin_addr);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof(src)) != 0) throw std::runtime_error("cannot bind");
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
    throw std::runtime_error("cannot connect");
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size()))
    throw std::runtime_error("short send");
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof(buf), 0)) > 0;) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

// A chunked body is refused (411: bodies come with a length); a POST without Content-Length
// has an empty body and is answered as one (not held waiting for a body).
TEST_F(ServerTest, BodiesWithoutContentLength) {
  start();
  const std::string created =
      raw_exchange(port_, "POST /v1/sessions HTTP/1.1\r\nHost: " + host() + "\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(created.rfind("HTTP/1.1 201", 0), 0u) << created;
  const std::string chunked = raw_exchange(
      port_,
      "POST /v1/analyze HTTP/1.1\r\nHost: " + host() + "\r\nContent-Type: image/png\r\nTransfer-Encoding: chunked\r\n"
      "Connection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
  EXPECT_EQ(chunked.rfind("HTTP/1.1 411", 0), 0u) << chunked;
  EXPECT_NE(chunked.find("Content-Length"), std::string::npos) << chunked;
}

// A connection that sends its header a byte at a time (or never ends it) holds a connection,
// not a thread: /health, the API and analysis go on, and the slow ones get 408 at the header
// deadline. (With httplib's thread per connection, 9 such sockets stopped the server.)
TEST_F(ServerTest, SlowHeaderClientsDoNotStopTheServer) {
  ServerOptions o;
  o.http_threads = 2;
  o.header_timeout_s = 1;
  start(o);
  std::vector<int> slow;
  for (int i = 0; i < 16; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port_));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    const std::string partial = "POST /v1/analyze HTTP/1.1\r\nHost: " + host() + "\r\nX-Slow: ";
    ASSERT_EQ(::send(fd, partial.data(), partial.size(), MSG_NOSIGNAL), static_cast<ssize_t>(partial.size()));
    slow.push_back(fd);
  }
  const auto [health_status, health] = get("/health");
  EXPECT_EQ(health_status, 200) << health.dump();
  const auto [status, answer] = post("/v1/analyze", file_bytes(kImage));
  EXPECT_EQ(status, 200) << answer.dump();
  EXPECT_FALSE(answer["faces"].empty());
  for (const int fd : slow) {
    timeval tv{30, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    std::string out;
    char buf[4096];
    for (ssize_t n; (n = ::recv(fd, buf, sizeof(buf), 0)) > 0;) out.append(buf, static_cast<size_t>(n));
    ::close(fd);
    EXPECT_EQ(out.rfind("HTTP/1.1 408", 0), 0u) << out;
    EXPECT_NE(out.find("{\"error\":\"the request header did not arrive within 1 s\"}"), std::string::npos) << out;
  }
}

// Everything after the first answer on a connection, split into the answers' status lines.
std::vector<std::string> status_lines(const std::string& answers) {
  std::vector<std::string> out;
  for (size_t at = answers.find("HTTP/1.1 "); at != std::string::npos; at = answers.find("HTTP/1.1 ", at + 1))
    out.push_back(answers.substr(at, answers.find("\r\n", at) - at));
  return out;
}

// A request whose length is ambiguous is refused, and what follows it on the connection is not
// read as a request of its own (request smuggling behind a proxy that used the other length).
TEST_F(ServerTest, AmbiguousLengthsAreRefusedAndTheConnectionClosed) {
  start();
  const std::string smuggled = "DELETE /v1/sessions/x HTTP/1.1\r\nHost: " + host() + "\r\n\r\n";
  const std::string two = raw_exchange(port_, "POST /v1/sessions HTTP/1.1\r\nHost: " + host() +
                                                  "\r\nContent-Length: 2\r\nContent-Length: " +
                                                  std::to_string(2 + smuggled.size()) + "\r\n\r\n{}" + smuggled);
  ASSERT_EQ(status_lines(two), std::vector<std::string>{"HTTP/1.1 400 Bad Request"}) << two;
  EXPECT_NE(two.find("more than one Content-Length"), std::string::npos) << two;
  EXPECT_EQ(server_->sessions(), 0);
  for (const std::string bad : {"-1", "1e3", "0x10", "+5", "99999999999999999999"}) {
    const std::string r = raw_exchange(port_, "POST /v1/sessions HTTP/1.1\r\nHost: " + host() +
                                                  "\r\nContent-Length: " + bad + "\r\n\r\n{}" + smuggled);
    EXPECT_EQ(status_lines(r), std::vector<std::string>{"HTTP/1.1 400 Bad Request"}) << "'" << bad << "': " << r;
  }
  // A refused request's body is not the next request either.
  const std::string foreign = raw_exchange(port_, "POST /v1/sessions HTTP/1.1\r\nHost: evil.example\r\nContent-Length: " +
                                                      std::to_string(smuggled.size()) + "\r\n\r\n" + smuggled);
  EXPECT_EQ(status_lines(foreign).size(), 1u) << foreign;
  EXPECT_EQ(get("/health").first, 200);
}

// DNS rebinding: another site's name resolving to this machine. Its Host is refused; the
// server's own names are not.
TEST_F(ServerTest, AForeignHostIsRefused) {
  start();
  const std::string evil = raw_exchange(port_, "GET /v1/model HTTP/1.1\r\nHost: evil.example:" + std::to_string(port_) +
                                                   "\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(evil.rfind("HTTP/1.1 421", 0), 0u) << evil;
  EXPECT_NE(evil.find("evil.example"), std::string::npos) << evil;
  EXPECT_EQ(evil.find("\"classes\""), std::string::npos) << evil;
  for (const std::string name : {"127.0.0.1", "localhost", "LOCALHOST", "[::1]"}) {
    const std::string ok = raw_exchange(port_, "GET /health HTTP/1.1\r\nHost: " + name + ":" + std::to_string(port_) +
                                                   "\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(ok.rfind("HTTP/1.1 200", 0), 0u) << name << ": " << ok;
  }
  const std::string other_port = raw_exchange(port_, "GET /health HTTP/1.1\r\nHost: 127.0.0.1:1\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(other_port.rfind("HTTP/1.1 421", 0), 0u) << other_port;
}

// Any page a user visits may post to localhost with a "simple" request (text/plain, a form,
// multipart: no preflight). Another origin is refused before anything is created; the page's
// own origin, and an origin the server admits, are not.
TEST_F(ServerTest, ACrossOriginSimplePostIsRefused) {
  ServerOptions o;
  o.allowed_origins = {"https://class.example.org"};
  start(o);
  for (const char* type : {"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"}) {
    httplib::Headers h = {{"Origin", "https://evil.example"}};
    auto r = client_->Post("/v1/sessions", h, "{}", type);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 403) << type << ": " << r->body;
    EXPECT_NE(r->body.find("another site"), std::string::npos) << r->body;
  }
  auto fetch_metadata = client_->Post("/v1/sessions", {{"Sec-Fetch-Site", "cross-site"}, {"Sec-Fetch-Mode", "no-cors"}},
                                      "{}", "text/plain");
  ASSERT_TRUE(fetch_metadata);
  EXPECT_EQ(fetch_metadata->status, 403) << "no Origin, but the browser says cross-site";
  auto null_origin = client_->Post("/v1/sessions", {{"Origin", "null"}}, "{}", "text/plain");
  ASSERT_TRUE(null_origin);
  EXPECT_EQ(null_origin->status, 403) << "a sandboxed frame or a file:// page";
  EXPECT_EQ(server_->sessions(), 0) << "nothing created by a refused request";
  auto same = client_->Post("/v1/sessions", {{"Origin", "http://" + host()}}, "{}", "application/json");
  ASSERT_TRUE(same);
  EXPECT_EQ(same->status, 201) << same->body;
  auto admitted = client_->Post("/v1/sessions", {{"Origin", "https://class.example.org"}}, "{}", "application/json");
  ASSERT_TRUE(admitted);
  EXPECT_EQ(admitted->status, 201) << admitted->body;
  // A link from another site to the page is a navigation: it opens.
  auto link = client_->Get("/", {{"Sec-Fetch-Site", "cross-site"}, {"Sec-Fetch-Mode", "navigate"}});
  ASSERT_TRUE(link);
  EXPECT_EQ(link->status, 200);
}

// With a token, every request but /health carries it: as a bearer header, or as the cookie
// that the printed URL (/?token=...) sets before sending the browser to /.
TEST_F(ServerTest, ATokenIsRequiredAndThePrintedUrlSetsIt) {
  ServerOptions o;
  o.token = "s3cret-token-0123456789";
  start(o);
  EXPECT_EQ(get("/health").first, 200) << "liveness needs no token";
  auto none = client_->Get("/v1/model");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 401);
  EXPECT_NE(none->body.find("Authorization: Bearer"), std::string::npos) << none->body;
  auto wrong = client_->Get("/v1/model", {{"Authorization", "Bearer s3cret-token-0123456788"}});
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 401);
  auto shorter = client_->Get("/v1/model", {{"Authorization", "Bearer s3cret"}});
  ASSERT_TRUE(shorter);
  EXPECT_EQ(shorter->status, 401);
  auto bearer = client_->Get("/v1/model", {{"Authorization", "Bearer " + o.token}});
  ASSERT_TRUE(bearer);
  EXPECT_EQ(bearer->status, 200);
  auto post = client_->Post("/v1/sessions", "{}", "application/json");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 401);
  EXPECT_EQ(server_->sessions(), 0);
  auto page = client_->Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 401);
  EXPECT_NE(page->body.find("?token="), std::string::npos) << "the page says how to get in";
  auto bad_link = client_->Get("/?token=guess");
  ASSERT_TRUE(bad_link);
  EXPECT_EQ(bad_link->status, 401);
  EXPECT_FALSE(bad_link->has_header("Set-Cookie"));
  auto link = client_->Get(("/?token=" + o.token).c_str());
  ASSERT_TRUE(link);
  EXPECT_EQ(link->status, 303);
  EXPECT_EQ(link->get_header_value("Location"), "/");
  const std::string cookie = link->get_header_value("Set-Cookie");
  EXPECT_NE(cookie.find("HttpOnly"), std::string::npos) << cookie;
  EXPECT_NE(cookie.find("SameSite=Strict"), std::string::npos) << cookie;
  const std::string pair = cookie.substr(0, cookie.find(';'));
  auto with_cookie = client_->Get("/", {{"Cookie", "other=1; " + pair}});
  ASSERT_TRUE(with_cookie);
  EXPECT_EQ(with_cookie->status, 200);
  auto session = client_->Post("/v1/sessions", {{"Cookie", pair}}, "{}", "application/json");
  ASSERT_TRUE(session);
  EXPECT_EQ(session->status, 201) << session->body;
}

TEST(ServerAccess, BeyondLoopbackATokenOrInsecureIsRequired) {
  EXPECT_TRUE(is_loopback_host("127.0.0.1"));
  EXPECT_TRUE(is_loopback_host("127.8.0.1"));
  EXPECT_TRUE(is_loopback_host("::1"));
  EXPECT_TRUE(is_loopback_host("localhost"));
  EXPECT_FALSE(is_loopback_host("0.0.0.0"));
  EXPECT_FALSE(is_loopback_host("192.168.1.4"));
  EXPECT_FALSE(is_loopback_host("128.0.0.1"));
  EXPECT_FALSE(is_loopback_host(""));
  ServerOptions o;
  o.host = "0.0.0.0";
  try {
    o.validate();
    ADD_FAILURE() << "0.0.0.0 without a token was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("needs a token"), std::string::npos) << e.what();
  }
  o.insecure = true;
  EXPECT_NO_THROW(o.validate());
  o.insecure = false;
  o.token = "short";
  EXPECT_THROW(o.validate(), std::invalid_argument) << "a 5-character token";
  o.token = "with space in it, long enough";
  EXPECT_THROW(o.validate(), std::invalid_argument);
  o.token = random_token();
  EXPECT_EQ(o.token.size(), 32u);
  EXPECT_NO_THROW(o.validate());
  EXPECT_NE(random_token(), random_token());
  EXPECT_TRUE(constant_time_equal("abc", "abc"));
  EXPECT_FALSE(constant_time_equal("abc", "abd"));
  EXPECT_FALSE(constant_time_equal("abc", "ab"));
  EXPECT_FALSE(constant_time_equal("", "a"));
}

TEST_F(ServerTest, SessionTracksOneFaceWithOneId) {
  start();
  const auto want = shared_analyzer()->analyze(read_image(kImage));
  ASSERT_FALSE(want.empty());
  const std::string id = create_session();
  ASSERT_EQ(id.size(), 32u);
  EXPECT_TRUE(std::regex_match(id, std::regex("[0-9a-f]{32}")));
  const std::string bytes = file_bytes(kImage);
  std::vector<json> frames;
  for (int i = 0; i < 3; ++i) {
    const auto [status, j] = post("/v1/sessions/" + id + "/frames?t=" + std::to_string(0.1 * i), bytes);
    ASSERT_EQ(status, 200) << j.dump();
    EXPECT_EQ(j["frame"], i);
    frames.push_back(j);
  }
  // min_hits = 2: a new face is shown from its second detection on.
  EXPECT_TRUE(frames[0]["faces"].empty());
  ASSERT_EQ(frames[1]["faces"].size(), want.size());
  ASSERT_EQ(frames[2]["faces"].size(), want.size());
  for (size_t k = 0; k < want.size(); ++k) {
    EXPECT_EQ(frames[1]["faces"][k]["track"], frames[2]["faces"][k]["track"]);
    // Between full scans the tracker detects in a window around the face: a box near, not at, the full
    // scan's.
    const auto& b = frames[2]["faces"][k]["box"];
    EXPECT_GT(box_iou(cv::Rect(b["x"], b["y"], b["w"], b["h"]), want[k].box), 0.6) << b.dump();
  }
  EXPECT_EQ(frames[2]["faces"][0]["track"], 1);
  EXPECT_EQ(frames[2]["counts"][frames[2]["faces"][0]["label"].get<std::string>()].get<int>() >= 1, true);
  EXPECT_EQ(frames[2]["active_tracks"], static_cast<int>(want.size()));

  const auto [ss, summary] = get("/v1/sessions/" + id);
  ASSERT_EQ(ss, 200) << summary.dump();
  EXPECT_EQ(summary["frames"], 3);
  ASSERT_EQ(summary["tracks"].size(), want.size());
  EXPECT_EQ(summary["tracks"][0]["track"], 1);
  EXPECT_EQ(summary["tracks"][0]["frames"], 2);
  EXPECT_NEAR(summary["tracks"][0]["last_s"].get<double>(), 0.2, 1e-9);

  // Time may not go backwards within a session.
  const auto [bs, back] = post("/v1/sessions/" + id + "/frames?t=0.1", bytes);
  EXPECT_EQ(bs, 400) << back.dump();

  auto del = client_->Delete(("/v1/sessions/" + id).c_str());
  ASSERT_TRUE(del);
  EXPECT_EQ(del->status, 200);
  EXPECT_EQ(parse(del)["deleted"], true);
  EXPECT_EQ(get("/v1/sessions/" + id).first, 404);
  EXPECT_EQ(client_->Delete(("/v1/sessions/" + id).c_str())->status, 404);
}

TEST_F(ServerTest, SessionOptionsAreChecked) {
  start();
  const auto [s1, j1] =
      post("/v1/sessions", R"({"every": 3, "smooth": 0.8, "min_hits": 1})", "application/json");
  ASSERT_EQ(s1, 201) << j1.dump();
  EXPECT_EQ(j1["every"], 3);
  EXPECT_EQ(j1["min_hits"], 1);
  EXPECT_EQ(j1["frames_url"], "/v1/sessions/" + j1["id"].get<std::string>() + "/frames");
  EXPECT_EQ(post("/v1/sessions", "", "application/json").first, 201);  // no body: the defaults
  const auto [s2, j2] = post("/v1/sessions", R"({"every": 0})", "application/json");
  EXPECT_EQ(s2, 400);
  EXPECT_NE(j2["error"].get<std::string>().find("detect_every"), std::string::npos) << j2.dump();
  const auto [s3, j3] = post("/v1/sessions", R"({"evry": 2})", "application/json");
  EXPECT_EQ(s3, 400);
  EXPECT_NE(j3["error"].get<std::string>().find("evry"), std::string::npos) << j3.dump();
  EXPECT_EQ(post("/v1/sessions", R"({"smooth": "high"})", "application/json").first, 400);
  EXPECT_EQ(post("/v1/sessions", "every=2", "application/json").first, 400);

  // With min_hits 1 the face shows on the first frame.
  const auto [fs, frame] = post(j1["frames_url"].get<std::string>(), file_bytes(kImage));
  ASSERT_EQ(fs, 200) << frame.dump();
  EXPECT_FALSE(frame["faces"].empty());
}

TEST_F(ServerTest, SessionsAreCapped) {
  ServerOptions o;
  o.max_sessions = 2;
  start(o);
  const std::string a = create_session();
  create_session();
  auto r = client_->Post("/v1/sessions", "{}", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_FALSE(r->get_header_value("Retry-After").empty());
  EXPECT_NE(parse(r)["error"].get<std::string>().find("2 live sessions"), std::string::npos);
  EXPECT_EQ(get("/health").second["sessions"], 2);
  ASSERT_EQ(client_->Delete(("/v1/sessions/" + a).c_str())->status, 200);
  create_session();  // room again
}

// One client may not take every session: past its own cap it gets 429, another client still
// gets one.
TEST_F(ServerTest, SessionsAreCappedPerClient) {
  ServerOptions o;
  o.max_sessions = 10;
  o.max_sessions_per_client = 2;
  start(o);
  create_session();
  create_session();
  auto r = client_->Post("/v1/sessions", "{}", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 429) << r->body;
  EXPECT_FALSE(r->get_header_value("Retry-After").empty());
  EXPECT_NE(parse(r)["error"].get<std::string>().find("2 live sessions"), std::string::npos) << r->body;
  const std::string other = raw_exchange(
      port_, "POST /v1/sessions HTTP/1.1\r\nHost: " + host() + "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
      "127.0.0.2");
  EXPECT_EQ(other.rfind("HTTP/1.1 201", 0), 0u) << other;
  EXPECT_EQ(server_->sessions(), 3);
}

TEST_F(ServerTest, IdleSessionsExpire) {
  ServerOptions o;
  o.session_timeout_s = 0.3;
  start(o);
  const std::string id = create_session();
  EXPECT_EQ(get("/v1/sessions/" + id).first, 200);
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  const auto [status, j] = get("/v1/sessions/" + id);
  EXPECT_EQ(status, 404);
  EXPECT_NE(j["error"].get<std::string>().find("without frames"), std::string::npos) << j.dump();
  EXPECT_EQ(server_->sessions(), 0);
}

TEST_F(ServerTest, ConcurrentClientsGetIdenticalAnswers) {
  start();
  const std::string bytes = file_bytes(kImage);
  const json reference = post("/v1/analyze", bytes).second["faces"];
  ASSERT_FALSE(reference.empty());
  std::vector<std::vector<json>> answers(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      auto c = client();
      for (int i = 0; i < 5; ++i) {
        auto r = c->Post("/v1/analyze", bytes, "image/png");
        answers[static_cast<size_t>(t)].push_back(r && r->status == 200 ? json::parse(r->body)["faces"]
                                                                        : json());
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& per_thread : answers) {
    ASSERT_EQ(per_thread.size(), 5u);
    for (const auto& faces : per_thread) EXPECT_EQ(faces, reference);
  }
}

TEST_F(ServerTest, TakenPortIsAnErrorNamingIt) {
  start();
  ServerOptions o;
  o.port = port_;
  Server second(shared_analyzer(), o);
  try {
    second.bind();
    FAIL() << "bound a port already in use";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(std::to_string(port_)), std::string::npos) << msg;
    EXPECT_NE(msg.find("in use"), std::string::npos) << msg;
  }
}

TEST(ServerLifetime, StopBeforeRunReturnsAtOnce) {
  ServerOptions o;
  o.port = 0;
  Server server(shared_analyzer(), o);
  EXPECT_GT(server.bind(), 0);
  server.stop();
  server.run();  // returns: stop came first
  SUCCEED();
}

TEST(ServerLifetime, BadOptionsAreRefused) {
  ServerOptions o;
  o.workers = 0;
  EXPECT_THROW(Server(shared_analyzer(), o), std::invalid_argument);
  o = ServerOptions{};
  o.video.smoothing = 1.0;
  EXPECT_THROW(Server(shared_analyzer(), o), std::invalid_argument);
}

#ifdef FERVID_CLI_PATH

// Runs `fervid serve ARGS`, stdout and stderr into one pipe; returns the pid and the read end.
std::pair<pid_t, int> spawn_serve(const std::vector<std::string>& args) {
  int fds[2];
  if (::pipe(fds) != 0) throw std::runtime_error("pipe failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 2);
  posix_spawn_file_actions_addclose(&actions, fds[0]);
  std::vector<std::string> argv_s = {FERVID_CLI_PATH, "--threads", "1", "serve"};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, FERVID_CLI_PATH, &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  if (rc != 0) throw std::runtime_error("posix_spawn failed");
  return {pid, fds[0]};
}

// Reads until `until` appears in what was read (or end of file); returns everything read.
std::string read_until(int fd, const std::string& until) {
  std::string out;
  char buf[4096];
  while (until.empty() || out.find(until) == std::string::npos) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// The exit status, or -1 after killing a child that did not end within `seconds`.
int wait_exit(pid_t pid, double seconds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  int st = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid, &st, WNOHANG) == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &st, 0);
  return -1;
}

TEST_F(ServerTest, CliRefusesATakenPort) {
  start();
  const auto [pid, fd] = spawn_serve({"--port", std::to_string(port_)});
  const std::string out = read_until(fd, "");
  ::close(fd);
  EXPECT_EQ(wait_exit(pid, 60), 1) << out;
  EXPECT_NE(out.find("port " + std::to_string(port_)), std::string::npos) << out;
  EXPECT_NE(out.find("already in use"), std::string::npos) << out;
}

TEST(ServeCli, StartsLogsAndStopsOnSigterm) {
  const auto [pid, fd] = spawn_serve({"--port", "0", "--log"});
  const std::string start = read_until(fd, "Ctrl-C stops\n");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(start, m, std::regex("http://127\\.0\\.0\\.1:([0-9]+)/"))) << start;
  EXPECT_NE(start.find("fervid-default.fervid"), std::string::npos) << start;
  httplib::Client c("127.0.0.1", std::stoi(m[1].str()));
  auto r = c.Get("/health");
  ASSERT_TRUE(r) << start;
  EXPECT_EQ(r->status, 200);
  ::kill(pid, SIGTERM);
  const std::string rest = read_until(fd, "");
  ::close(fd);
  EXPECT_EQ(wait_exit(pid, 30), 0) << start << rest;
  EXPECT_NE(rest.find("GET /health 200"), std::string::npos) << rest;
  EXPECT_NE(rest.find("fervid serve: stopped"), std::string::npos) << rest;
}

TEST(ServeCli, BeyondLoopbackItRefusesToStartWithoutAToken) {
  const auto [pid, fd] = spawn_serve({"--host", "0.0.0.0", "--port", "0"});
  const std::string out = read_until(fd, "");
  ::close(fd);
  EXPECT_EQ(wait_exit(pid, 60), 1) << out;
  EXPECT_NE(out.find("--token"), std::string::npos) << out;
  EXPECT_NE(out.find("--insecure"), std::string::npos) << out;
}

TEST(ServeCli, ARandomTokenIsPrintedInTheUrl) {
  const auto [pid, fd] = spawn_serve({"--port", "0", "--token", "random"});
  const std::string start = read_until(fd, "Ctrl-C stops\n");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(start, m, std::regex("http://127\\.0\\.0\\.1:([0-9]+)/\\?token=([0-9a-f]{32}) ")))
      << start;
  httplib::Client c("127.0.0.1", std::stoi(m[1].str()));
  auto refused = c.Get("/v1/model");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 401);
  auto ok = c.Get("/v1/model", {{"Authorization", "Bearer " + m[2].str()}});
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  ::kill(pid, SIGTERM);
  read_until(fd, "");
  ::close(fd);
  EXPECT_EQ(wait_exit(pid, 30), 0);
}

#endif  // FERVID_CLI_PATH

}  // namespace
}  // namespace fervid
