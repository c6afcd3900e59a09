// The real server under load (issue 14): `fervid serve` started as its own process on a loopback
// port, then for each client count (1, 16, 64 by default) that many keep-alive clients POST the
// demo image to /v1/analyze for a fixed time, while a prober GETs /health 20 times a second and
// 16 slow clients each send a request header one byte per second (reconnecting when the server
// ends them with 408). Reports requests/s, latency p50/p99, 503s (each must carry Retry-After:
// anything else is an error), /health p50/p99/max, and the server's resident memory before,
// during (the most) and after. A program, not a test: bounded in time (seconds x levels).
//
//   fervid_bench_server_load                      # 20 s per level, JSON to stdout's last line
// Environment: FERVID_BENCH_SECONDS (20), FERVID_BENCH_CLIENTS ("1,16,64"), FERVID_BENCH_SLOW (16),
// FERVID_BENCH_IMAGE (the demo image), FERVID_BENCH_OUT (also write the JSON there),
// FERVID_BENCH_SERVE_ARGS (more `fervid serve` flags, space-separated).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_env.h"

namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;
using fervid::bench::env;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

int connect_to(int port, double timeout_s) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  timeval tv{static_cast<time_t>(timeout_s), 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  int yes = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof(yes));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// One keep-alive HTTP/1.1 connection, reconnecting when the server closes it.
class Connection {
 public:
  explicit Connection(int port) : port_(port) {}
  ~Connection() { drop(); }
  struct Answer {
    int status = -1;  // -1: no answer (connection failed or timed out)
    bool retry_after = false;
    bool closes = false;
  };
  Answer exchange(const std::string& request) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (fd_ < 0) fd_ = connect_to(port_, 30);
      if (fd_ < 0) return {};
      const bool fresh = attempt == 1 || !used_;
      used_ = true;
      if (!send_all(request)) {
        drop();
        if (fresh) return {};
        continue;  // a kept-alive connection the server had just closed: once more, anew
      }
      Answer a = read_answer();
      if (a.status < 0) {
        drop();
        if (fresh || got_bytes_) return a;
        continue;
      }
      if (a.closes) drop();
      return a;
    }
    return {};
  }

 private:
  void drop() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    used_ = false;
    buf_.clear();
  }
  bool send_all(const std::string& s) {
    for (size_t at = 0; at < s.size();) {
      const ssize_t n = ::send(fd_, s.data() + at, s.size() - at, MSG_NOSIGNAL);
      if (n <= 0) return false;
      at += static_cast<size_t>(n);
    }
    return true;
  }
  Answer read_answer() {
    got_bytes_ = false;
    while (true) {
      const size_t end = buf_.find("\r\n\r\n");
      if (end != std::string::npos) {
        std::string head = buf_.substr(0, end);
        std::string lowered = head;
        std::transform(lowered.begin(), lowered.end(), lowered.begin(), [](unsigned char c) { return std::tolower(c); });
        const size_t cl = lowered.find("\r\ncontent-length:");
        const size_t len = cl == std::string::npos ? 0 : std::stoul(head.substr(cl + 17));
        if (buf_.size() >= end + 4 + len) {
          Answer a;
          a.status = head.size() > 12 ? std::atoi(head.c_str() + 9) : -1;
          a.retry_after = lowered.find("\r\nretry-after:") != std::string::npos;
          a.closes = lowered.find("\r\nconnection: close") != std::string::npos;
          buf_.erase(0, end + 4 + len);
          return a;
        }
      }
      char b[16384];
      const ssize_t n = ::recv(fd_, b, sizeof(b), 0);
      if (n <= 0) return {};
      got_bytes_ = true;
      buf_.append(b, static_cast<size_t>(n));
    }
  }

  int port_;
  int fd_ = -1;
  bool used_ = false, got_bytes_ = false;
  std::string buf_;
};

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5));
  return v[i];
}

double rss_mb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  return 0;
}

struct Serve {
  pid_t pid = -1;
  int port = 0;
};

// Starts `fervid serve --port 0` and reads the port from its first line.
Serve start_server(const std::string& extra_args) {
  int out[2];
  if (::pipe(out) != 0) throw std::runtime_error("pipe");
  std::vector<std::string> args = {FERVID_CLI_PATH, "serve", "--host", "127.0.0.1", "--port", "0"};
  std::istringstream extra(extra_args);
  for (std::string a; extra >> a;) args.push_back(a);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out[1], 1);
    ::close(out[0]);
    ::close(out[1]);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    std::perror("exec fervid");
    ::_exit(127);
  }
  ::close(out[1]);
  std::string line;
  char c;
  while (::read(out[0], &c, 1) == 1 && c != '\n') line += c;
  // Keep draining its stdout so the server never blocks on a full pipe.
  std::thread([fd = out[0]] {
    char b[256];
    while (::read(fd, b, sizeof(b)) > 0) {
    }
    ::close(fd);
  }).detach();
  const size_t at = line.find("http://127.0.0.1:");
  if (at == std::string::npos) throw std::runtime_error("fervid serve did not start: '" + line + "'");
  Serve s;
  s.pid = pid;
  s.port = std::atoi(line.c_str() + at + 17);
  return s;
}

json run_level(int port, pid_t pid, int clients, double seconds, int slow_count, const std::string& image) {
  const std::string post = "POST /v1/analyze HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                           "\r\nContent-Type: image/png\r\nContent-Length: " + std::to_string(image.size()) +
                           "\r\n\r\n" + image;
  const std::string health = "GET /health HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) + "\r\n\r\n";
  std::atomic<bool> stop{false};
  std::mutex m;
  std::vector<double> latencies, health_ms;
  int64_t ok = 0, busy = 0, errors = 0, health_failures = 0, slow_timeouts = 0, slow_connects = 0;
  std::vector<std::string> error_samples;

  std::vector<std::thread> threads;
  // Slow clients: one header byte per second until the server ends them, then anew.
  for (int i = 0; i < slow_count; ++i) {
    threads.emplace_back([&] {
      const std::string header = "POST /v1/analyze HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + std::string(200, 'a');
      while (!stop) {
        const int fd = connect_to(port, 2);
        if (fd < 0) break;
        {
          std::lock_guard<std::mutex> lock(m);
          ++slow_connects;
        }
        bool ended = false;
        for (size_t at = 0; at < header.size() && !stop && !ended; ++at) {
          if (::send(fd, header.data() + at, 1, MSG_NOSIGNAL) != 1) break;
          for (int t = 0; t < 10 && !stop; ++t) {  // a second, in steps that notice the end
            char b[512];
            const ssize_t n = ::recv(fd, b, sizeof(b), MSG_DONTWAIT);
            if (n > 0 && std::strstr(std::string(b, static_cast<size_t>(n)).c_str(), " 408 ")) {
              std::lock_guard<std::mutex> lock(m);
              ++slow_timeouts;
            }
            if (n == 0 || n > 0) {
              ended = true;
              break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
          }
        }
        ::close(fd);
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the slow ones connected first
  const auto t0 = Clock::now();
  const auto until = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back([&] {
      Connection c(port);
      while (Clock::now() < until) {
        const auto s = Clock::now();
        const auto a = c.exchange(post);
        const double ms = ms_between(s, Clock::now());
        {
          std::lock_guard<std::mutex> lock(m);
          if (a.status == 200) {
            ++ok;
            latencies.push_back(ms);
          } else if (a.status == 503 && a.retry_after) {
            ++busy;
          } else {
            ++errors;
            if (error_samples.size() < 5) error_samples.push_back("status " + std::to_string(a.status));
          }
        }
        // Back off briefly after a 503 (not the whole Retry-After: the load stays on).
        if (a.status == 503) std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    });
  }
  double rss_max = 0;
  std::thread prober([&] {
    Connection c(port);
    while (Clock::now() < until) {
      const auto s = Clock::now();
      const auto a = c.exchange(health);
      const double ms = ms_between(s, Clock::now());
      {
        std::lock_guard<std::mutex> lock(m);
        if (a.status == 200)
          health_ms.push_back(ms);
        else
          ++health_failures;
      }
      rss_max = std::max(rss_max, rss_mb(pid));
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  prober.join();
  for (size_t i = static_cast<size_t>(slow_count); i < threads.size(); ++i) threads[i].join();
  const double elapsed = ms_between(t0, Clock::now()) / 1000;
  stop = true;
  for (int i = 0; i < slow_count; ++i) threads[static_cast<size_t>(i)].join();
  json out = {{"clients", clients},
              {"seconds", elapsed},
              {"ok", ok},
              {"busy_503_with_retry_after", busy},
              {"errors", errors},
              {"error_samples", error_samples},
              {"requests_per_s", static_cast<double>(ok) / elapsed},
              {"p50_ms", percentile(latencies, 0.5)},
              {"p99_ms", percentile(latencies, 0.99)},
              {"health", {{"probes", health_ms.size()}, {"failures", health_failures}, {"p50_ms", percentile(health_ms, 0.5)},
                          {"p99_ms", percentile(health_ms, 0.99)}, {"max_ms", percentile(health_ms, 1.0)}}},
              {"slow_clients", {{"count", slow_count}, {"connections", slow_connects}, {"ended_with_408", slow_timeouts}}},
              {"rss_max_mb", rss_max}};
  return out;
}

std::vector<int> client_counts(const std::string& text) {
  std::vector<int> out;
  std::stringstream ss(text.empty() ? "1,16,64" : text);
  for (std::string item; std::getline(ss, item, ',');) out.push_back(std::max(1, std::atoi(item.c_str())));
  return out;
}

}  // namespace

int main() {
  ::signal(SIGPIPE, SIG_IGN);
  const double seconds = env("FERVID_BENCH_SECONDS").empty() ? 20.0 : std::atof(env("FERVID_BENCH_SECONDS").c_str());
  const int slow = env("FERVID_BENCH_SLOW").empty() ? 16 : std::atoi(env("FERVID_BENCH_SLOW").c_str());
  const std::string image_path =
      env("FERVID_BENCH_IMAGE").empty() ? std::string(FERVID_EXAMPLES_DIR) + "/astronaut.png" : env("FERVID_BENCH_IMAGE");
  std::ifstream in(image_path, std::ios::binary);
  if (!in) {
    std::cerr << "fervid_bench_server_load: cannot read " << image_path << "\n";
    return 1;
  }
  const std::string image((std::istreambuf_iterator<char>(in)), {});
  // Header timeout 10 s (the default): the slow clients are ended and come back during a level.
  const Serve s = start_server(env("FERVID_BENCH_SERVE_ARGS"));
  json report = {{"benchmark", "server_load"},
                 {"commit", FERVID_GIT_COMMIT},
                 {"image", image_path},
                 {"image_bytes", image.size()},
                 {"seconds_per_level", seconds},
                 {"cores", std::thread::hardware_concurrency()},
                 {"serve_args", env("FERVID_BENCH_SERVE_ARGS")},
                 {"levels", json::array()}};
  {
    Connection warm(s.port);  // the first analyses allocate libtorch's buffers: not a leak
    const std::string post = "POST /v1/analyze HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(s.port) +
                             "\r\nContent-Type: image/png\r\nContent-Length: " + std::to_string(image.size()) +
                             "\r\n\r\n" + image;
    for (int i = 0; i < 10; ++i) warm.exchange(post);
  }
  const double before = rss_mb(s.pid);
  int exit_code = 0;
  std::printf("%8s %9s %7s %7s %9s %9s %8s %11s %11s %9s\n", "clients", "req/s", "ok", "503", "p50 ms", "p99 ms",
              "errors", "health p99", "health max", "rss MB");
  for (const int clients : client_counts(env("FERVID_BENCH_CLIENTS"))) {
    json level = run_level(s.port, s.pid, clients, seconds, slow, image);
    std::printf("%8d %9.1f %7lld %7lld %9.1f %9.1f %8lld %11.1f %11.1f %9.1f\n", clients,
                level["requests_per_s"].get<double>(), static_cast<long long>(level["ok"].get<int64_t>()),
                static_cast<long long>(level["busy_503_with_retry_after"].get<int64_t>()),
                level["p50_ms"].get<double>(), level["p99_ms"].get<double>(),
                static_cast<long long>(level["errors"].get<int64_t>()), level["health"]["p99_ms"].get<double>(),
                level["health"]["max_ms"].get<double>(), level["rss_max_mb"].get<double>());
    std::fflush(stdout);
    if (level["errors"].get<int64_t>() > 0 || level["health"]["failures"].get<int64_t>() > 0) exit_code = 1;
    report["levels"].push_back(level);
  }
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const double after = rss_mb(s.pid);
  report["rss_mb"] = {{"before", before}, {"after", after}, {"after_over_before", before > 0 ? after / before : 0.0}};
  std::printf("resident memory: %.1f MB before, %.1f MB after (x%.3f)\n", before, after, before > 0 ? after / before : 0.0);
  ::kill(s.pid, SIGTERM);
  int status = 0;
  ::waitpid(s.pid, &status, 0);
  report["server_exit"] = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  const std::string text = report.dump();
  std::cout << text << "\n";
  if (!env("FERVID_BENCH_OUT").empty()) {
    const std::string out = env("FERVID_BENCH_OUT"), tmp = out + ".tmp";
    std::ofstream(tmp) << report.dump(2) << "\n";
    std::rename(tmp.c_str(), out.c_str());
  }
  return exit_code;
}
