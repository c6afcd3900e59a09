// fervid serve: the HTTP service and its browser page (fervid::Server), the model loaded once.
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstring>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <thread>

#include "analyzer_flags.h"
#include "commands.h"
#include "fervid/runtime.h"
#include "fervid/server.h"

namespace fervid::cli {

namespace {

// Self-pipe: SIGINT / SIGTERM write a byte and a watcher thread stops the server (Server::stop
// takes locks, which a signal handler must not).
int g_stop_pipe[2] = {-1, -1};
extern "C" void on_stop_signal(int) {
  const int saved = errno;
  const char c = 1;
  [[maybe_unused]] const ssize_t n = ::write(g_stop_pipe[1], &c, 1);
  errno = saved;
}

class StopSignals {
 public:
  StopSignals() {
    if (::pipe(g_stop_pipe) != 0) throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, &old_int_);
    ::sigaction(SIGTERM, &sa, &old_term_);
  }
  ~StopSignals() {
    ::sigaction(SIGINT, &old_int_, nullptr);
    ::sigaction(SIGTERM, &old_term_, nullptr);
    ::close(g_stop_pipe[0]);
    ::close(g_stop_pipe[1]);
    g_stop_pipe[0] = g_stop_pipe[1] = -1;
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;
  // Blocks until a signal arrives or wake() is called.
  static void wait() {
    char c;
    while (::read(g_stop_pipe[0], &c, 1) < 0 && errno == EINTR) {
    }
  }
  static void wake() { on_stop_signal(0); }

 private:
  struct sigaction old_int_ {
  }, old_term_{};
};

}  // namespace

void add_serve_command(CLI::App& app, const GlobalOptions& global) {
  struct Flags {
    ServerOptions server;
    double max_body_mb = 16;
    bool log = false;
    AnalyzerFlags analyzer;
  };
  auto f = std::make_shared<Flags>();
  auto* cmd = app.add_subcommand(
      "serve", "HTTP JSON service and browser page: photos, camera, a shared video-call window");
  cmd->add_option("--host", f->server.host,
                  "Address to listen on (0.0.0.0: every interface; the camera needs localhost or https)")
      ->capture_default_str();
  cmd->add_option("--port", f->server.port, "Port (0: any free port)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  cmd->add_option("--max-body-mb", f->max_body_mb, "Largest upload or frame, in MiB")
      ->check(CLI::Range(0.001, 1024.0))
      ->capture_default_str();
  cmd->add_option("--max-sessions", f->server.max_sessions, "Live camera / window sessions at once")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--max-sessions-per-client", f->server.max_sessions_per_client,
                  "Live sessions one client address may hold")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--session-timeout", f->server.session_timeout_s,
                  "Seconds without a request after which a session ends")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--workers", f->server.workers,
                  "Requests analysed at once; with --threads 0 each gets cores / workers intra-op threads")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--http-threads", f->server.http_threads,
                  "Requests handled at once (waiting for a session or a worker included)")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  cmd->add_option("--queue", f->server.queue_depth,
                  "Requests waiting for a thread; beyond it the answer is 503 with Retry-After")
      ->check(CLI::Range(0, 100000))
      ->capture_default_str();
  cmd->add_option("--max-connections", f->server.max_connections, "Connections open at once (503 beyond)")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  cmd->add_option("--max-requests-per-connection", f->server.max_requests_per_connection,
                  "Requests on one kept-alive connection before it is closed")
      ->check(CLI::Range(1, 100000000))
      ->capture_default_str();
  cmd->add_option("--header-timeout", f->server.header_timeout_s,
                  "Seconds from a request's first byte to the end of its header (408 after)")
      ->check(CLI::Range(0.001, 86400.0))
      ->capture_default_str();
  cmd->add_option("--body-timeout", f->server.body_timeout_s,
                  "Seconds from the end of a header to the end of its body (408 after)")
      ->check(CLI::Range(0.001, 86400.0))
      ->capture_default_str();
  cmd->add_option("--idle-timeout", f->server.idle_timeout_s,
                  "Seconds a kept-alive connection may wait for its next request")
      ->check(CLI::Range(0.001, 86400.0))
      ->capture_default_str();
  cmd->add_option("--write-timeout", f->server.write_timeout_s,
                  "Seconds a client may take to receive an answer before the connection is closed")
      ->check(CLI::Range(0.001, 86400.0))
      ->capture_default_str();
  cmd->add_option("--token", f->server.token,
                  "Access token every request must carry (the printed URL sets it in the browser); 'random': "
                  "make one. Required unless --host is loopback");
  cmd->add_flag("--insecure", f->server.insecure, "Serve beyond loopback without a token (anyone who can reach it may use it)");
  cmd->add_option("--allow-origin", f->server.allowed_origins,
                  "Another web origin whose pages may call the API (e.g. https://class.example.org); repeatable");
  cmd->add_option("--allow-host", f->server.allowed_hosts,
                  "Another name the server is reached by (a reverse proxy's); repeatable");
  cmd->add_flag("--log", f->log, "Log every request to stderr: method, path, status, milliseconds");
  f->analyzer.add_to(cmd);
  cmd->callback([f, &global] {
    // workers x intra-op threads = cores: more only makes the threads contend (OpenMP spins).
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    if (global.threads == 0) configure_runtime(std::max(1, cores / f->server.workers));
    ServerOptions options = f->server;
    options.max_body_bytes = std::llround(f->max_body_mb * 1024 * 1024);
    if (options.token == "random") options.token = random_token();
    if (!is_loopback_host(options.host) && options.token.empty()) {
      if (!options.insecure) {
        throw std::runtime_error("--host " + options.host +
                                 " lets other machines reach the server: give it a --token (--token random makes one), "
                                 "or --insecure to serve without one");
      }
      std::cerr << "fervid serve: warning: --insecure: anyone who can reach " << options.host
                << " may use this server (and its camera sessions)\n";
    }
    if (f->log)
      options.log = [](const std::string& line) {
        std::cerr << ("fervid serve: " + line + "\n") << std::flush;
      };

    auto analyzer = std::make_shared<const Analyzer>(f->analyzer.make());
    Server server(analyzer, options);
    const int port = server.bind();  // a taken port: runtime_error naming it -> exit status 1
    const auto& c = analyzer->classifier().config();
    const std::string host =
        options.host.find(':') != std::string::npos ? "[" + options.host + "]" : options.host;
    std::cout
        << fmt::format(
               "fervid serve: http://{}:{}/{}  model {} ({} width {} {}x{}, {} faces{}{}), {} worker{} x {} thread{}; "
               "Ctrl-C stops\n",
               host, port, options.token.empty() ? "" : "?token=" + options.token, f->analyzer.model_path(), to_string(c.variant), c.width, c.input_size,
               c.input_size, analyzer->recipe().detector, analyzer->recipe().align ? ", align" : "",
               f->analyzer.flip ? ", flip" : "",
               options.workers, options.workers == 1 ? "" : "s", runtime_threads(),
               runtime_threads() == 1 ? "" : "s")
        << std::flush;

    StopSignals signals;
    std::thread watcher([&server] {
      StopSignals::wait();
      server.stop();
    });
    server.run();
    StopSignals::wake();  // run() may have ended without a signal
    watcher.join();
    std::cout << "fervid serve: stopped\n";
  });
}

}  // namespace fervid::cli
