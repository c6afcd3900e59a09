// fervid::http::HttpServer (http.h): one epoll I/O thread for every connection, a bounded
// queue, and worker threads for the requests that do work.
#include <arpa/inet.h>
#include <fcntl.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "http.h"

namespace fervid::http {

namespace {

using Clock = std::chrono::steady_clock;
constexpr uint64_t kListenId = 0, kWakeId = 1;
constexpr auto kLingerTime = std::chrono::seconds(2);  // reading and dropping after a closing answer
constexpr auto kScanEvery = std::chrono::milliseconds(50);
constexpr auto kStopGrace = std::chrono::seconds(10);  // requests in flight at stop() get this long
// After a burst, once this long without work, the memory the burst's bodies and images took is
// handed back to the system (glibc keeps freed memory in each thread's arena otherwise: +30%
// resident after a 64-client minute, measured with bench/bench_server_load.cpp).
constexpr auto kTrimAfterIdle = std::chrono::seconds(1);

Clock::duration seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

std::string peer_text(const sockaddr_storage& ss, int* port) {
  char text[INET6_ADDRSTRLEN] = {0};
  if (ss.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &a->sin_addr, text, sizeof(text));
    *port = ntohs(a->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    ::inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof(text));
    *port = ntohs(a->sin6_port);
  }
  return text;
}

}  // namespace

struct HttpServer::Impl {
  Impl(ServerLimits l, Handlers h) : limits(l), handlers(std::move(h)) {
    if (!handlers.error) {
      handlers.error = [](int status, const std::string& message, Response& res) {
        res.status = status;
        res.set_content(message + "\n", "text/plain; charset=utf-8");
      };
    }
  }

  ~Impl() {
    if (listen_fd >= 0) ::close(listen_fd);
  }

  const ServerLimits limits;
  Handlers handlers;

  // ---- state shared with workers and other threads --------------------------------------

  struct Job {
    uint64_t conn = 0;
    Request req;
    Response res;
    std::atomic<bool> cancelled{false};
    Clock::time_point t_headers;
  };

  std::mutex queue_mutex;
  std::condition_variable queue_cv;
  std::deque<std::shared_ptr<Job>> queue;  // guarded by queue_mutex
  bool workers_stop = false;               // guarded by queue_mutex
  std::mutex done_mutex;
  std::vector<std::shared_ptr<Job>> done;  // answered by a worker, to be written; guarded by done_mutex

  mutable std::mutex stats_mutex;
  ServerStats st;  // guarded by stats_mutex

  std::mutex run_mutex;
  bool ran = false;  // guarded by run_mutex
  std::atomic<bool> stop_requested{false};
  int listen_fd = -1, bound_port = 0;
  int wake_fd = -1;  // eventfd: stop() and finished jobs wake the I/O thread; guarded by run_mutex for its lifetime

  // ---- the I/O thread's own ---------------------------------------------------------------

  enum class Phase { kRead, kWork, kWrite, kLinger };
  struct Conn {
    uint64_t id = 0;
    int fd = -1;
    std::string addr;
    int port = 0;
    RequestParser parser;
    std::string pending;  // bytes read past the current request (pipelined)
    Phase phase = Phase::kRead;
    Clock::time_point deadline = Clock::time_point::max();
    Clock::time_point t_headers;
    std::string out;
    size_t out_at = 0;
    bool close_after = false;
    int served = 0;
    std::shared_ptr<Job> job;
    uint32_t events = 0;
    explicit Conn(const ParseLimits& p) : parser(p) {}
  };

  int epoll_fd = -1;
  uint64_t next_id = 2;
  std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns;
  std::vector<uint64_t> ready;  // kept-alive connections with pipelined bytes to parse
  bool draining = false;
  bool accept_paused = false;
  Clock::time_point last_work;
  bool trimmed = true;  // nothing to hand back before the first request
  Clock::time_point accept_resume;

  void count(int64_t ServerStats::*field, int64_t by = 1) {
    std::lock_guard<std::mutex> lock(stats_mutex);
    st.*field += by;
  }

  // ---- bind ---------------------------------------------------------------------------------

  int bind(const std::string& host, int port) {
    std::lock_guard<std::mutex> lock(run_mutex);
    if (listen_fd >= 0) return bound_port;
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    const std::string name = host.size() > 2 && host.front() == '[' && host.back() == ']' ? host.substr(1, host.size() - 2) : host;
    addrinfo* found = nullptr;
    const std::string port_text = std::to_string(port);
    auto fail = [&](const std::string& why) -> int {
      throw std::runtime_error("cannot listen on " + host + " port " + port_text + ": " + why);
    };
    const int rc = ::getaddrinfo(name.empty() || name == "0.0.0.0" ? nullptr : name.c_str(), port_text.c_str(),
                                 &hints, &found);
    if (rc != 0) return fail(std::string("cannot resolve the address (") + ::gai_strerror(rc) + ")");
    int err = 0;
    // "0.0.0.0" and "" listen on IPv4's every interface; a name tries each of its addresses.
    for (addrinfo* a = found; a; a = a->ai_next) {
      if ((name.empty() || name == "0.0.0.0") && a->ai_family != AF_INET) continue;
      const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
      if (fd < 0) {
        err = errno;
        continue;
      }
      // SO_REUSEADDR reuses a port in TIME_WAIT only; SO_REUSEPORT (not set) would let a second
      // server share a port that is in use.
      int yes = 1;
      ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
      if (::bind(fd, a->ai_addr, a->ai_addrlen) != 0 || ::listen(fd, 1024) != 0) {
        err = errno;
        ::close(fd);
        continue;
      }
      sockaddr_storage ss{};
      socklen_t len = sizeof(ss);
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
      int p = 0;
      peer_text(ss, &p);
      listen_fd = fd;
      bound_port = p;
      break;
    }
    ::freeaddrinfo(found);
    if (listen_fd < 0)
      return fail(err == EADDRINUSE ? "the port is already in use" : err ? std::strerror(err) : "no address to bind");
    return bound_port;
  }

  // ---- run ------------------------------------------------------------------------------------

  void wake() {
    std::lock_guard<std::mutex> lock(run_mutex);
    if (wake_fd >= 0) {
      const uint64_t one = 1;
      [[maybe_unused]] const ssize_t n = ::write(wake_fd, &one, sizeof(one));
    }
  }

  void stop() {
    stop_requested = true;
    wake();
  }

  void set_events(Conn& c, uint32_t events) {
    if (c.events == events) return;
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = c.id;
    ::epoll_ctl(epoll_fd, EPOLL_CTL_MOD, c.fd, &ev);
    c.events = events;
  }

  void close_conn(uint64_t id) {
    const auto it = conns.find(id);
    if (it == conns.end()) return;
    Conn& c = *it->second;
    if (c.job) cancel(c.job);
    ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, c.fd, nullptr);
    ::close(c.fd);
    conns.erase(it);
    count(&ServerStats::open, -1);
  }

  // A job whose client has gone: taken out of the queue if it still waits there; a running
  // one is told through `cancelled` (its answer is dropped).
  void cancel(const std::shared_ptr<Job>& job) {
    job->cancelled = true;
    bool dropped = false;
    {
      std::lock_guard<std::mutex> lock(queue_mutex);
      for (auto it = queue.begin(); it != queue.end(); ++it) {
        if (*it == job) {
          queue.erase(it);
          dropped = true;
          break;
        }
      }
    }
    if (dropped) {
      std::lock_guard<std::mutex> lock(stats_mutex);
      ++st.cancelled;
      --st.queued;
    }
  }

  void accept_all(Clock::time_point now) {
    while (true) {
      sockaddr_storage ss{};
      socklen_t len = sizeof(ss);
      const int fd = ::accept4(listen_fd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          // Out of descriptors: stop accepting for a moment instead of spinning on the event.
          ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, listen_fd, nullptr);
          accept_paused = true;
          accept_resume = now + std::chrono::milliseconds(100);
        }
        return;
      }
      count(&ServerStats::accepted);
      if (static_cast<int>(conns.size()) >= limits.max_connections) {
        Response res;
        handlers.error(503, "the server has " + std::to_string(limits.max_connections) +
                                " connections open, its most; try again shortly", res);
        res.set_header("Retry-After", std::to_string(limits.retry_after_s));
        const std::string text = serialize(res, false, false);
        [[maybe_unused]] const ssize_t n = ::send(fd, text.data(), text.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        ::close(fd);
        count(&ServerStats::busy);
        continue;
      }
      int yes = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof(yes));  // answers go out at once
      auto c = std::make_unique<Conn>(limits.parse);
      c->id = next_id++;
      c->fd = fd;
      c->addr = peer_text(ss, &c->port);
      c->deadline = now + seconds(limits.header_timeout_s);  // a first request is due like a header
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLRDHUP;
      ev.data.u64 = c->id;
      c->events = ev.events;
      if (::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        ::close(fd);
        continue;
      }
      conns.emplace(c->id, std::move(c));
      count(&ServerStats::open);
    }
  }

  // Writes an answer to `c` (and logs it); the connection then waits for its next request or
  // closes (close_after).
  void answer(Conn& c, Response& res, const Request& req, Clock::time_point now, bool body_unread) {
    const bool keep_alive = !res.close && !body_unread && !draining && !stop_requested && req.wants_keep_alive() &&
                            c.served + 1 < limits.max_requests_per_connection;
    c.out = serialize(res, req.method == "HEAD", keep_alive);
    c.out_at = 0;
    c.close_after = !keep_alive;
    c.phase = Phase::kWrite;
    c.deadline = now + seconds(limits.write_timeout_s);
    count(&ServerStats::requests);
    if (handlers.log) handlers.log(req, res, c.parser.headers_done() ? ms_between(c.t_headers, now) : 0.0);
    flush(c, now);
  }

  void answer_error(Conn& c, int status, const std::string& message, Clock::time_point now) {
    Response res;
    handlers.error(status, message, res);
    res.close = true;
    answer(c, res, c.parser.request(), now, true);
  }

  void flush(Conn& c, Clock::time_point now) {
    while (c.out_at < c.out.size()) {
      const ssize_t n = ::send(c.fd, c.out.data() + c.out_at, c.out.size() - c.out_at, MSG_NOSIGNAL);
      if (n > 0) {
        c.out_at += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        set_events(c, EPOLLOUT | EPOLLRDHUP);
        return;
      }
      close_conn(c.id);
      return;
    }
    c.out.clear();
    c.out.shrink_to_fit();
    if (c.close_after) {
      // Lingering close: FIN now, then read and drop what the client still sends, so that its
      // unread request bytes do not turn our close into a reset that destroys the answer.
      ::shutdown(c.fd, SHUT_WR);
      c.phase = Phase::kLinger;
      c.deadline = now + kLingerTime;
      set_events(c, EPOLLIN | EPOLLRDHUP);
      return;
    }
    ++c.served;
    c.parser.reset();
    c.phase = Phase::kRead;
    c.deadline = now + seconds(limits.idle_timeout_s);
    set_events(c, EPOLLIN | EPOLLRDHUP);
    if (!c.pending.empty()) ready.push_back(c.id);
  }

  // A whole request: quick routes answered here, the rest queued for a worker.
  void on_request(Conn& c, Clock::time_point now) {
    Request& req = c.parser.request();
    Response res;
    if (draining) res.close = true;
    if (handlers.quick && handlers.quick(req, res)) return answer(c, res, req, now, false);
    auto job = std::make_shared<Job>();
    {
      std::unique_lock<std::mutex> lock(queue_mutex);
      if (static_cast<int>(queue.size()) >= limits.queue_depth) {
        lock.unlock();
        count(&ServerStats::busy);
        Response busy;
        handlers.error(503, "the server is busy (" + std::to_string(limits.queue_depth) +
                                " requests waiting); try again in " + std::to_string(limits.retry_after_s) + " s",
                       busy);
        busy.set_header("Retry-After", std::to_string(limits.retry_after_s));
        return answer(c, busy, req, now, false);
      }
      job->conn = c.id;
      job->t_headers = c.t_headers;
      job->req = std::move(req);
      queue.push_back(job);
    }
    count(&ServerStats::queued);
    queue_cv.notify_one();
    c.job = job;
    c.phase = Phase::kWork;
    c.deadline = Clock::time_point::max();
    // Only a hang-up matters now (pipelined bytes wait in the socket until the answer).
    set_events(c, EPOLLRDHUP);
  }

  // Parses bytes of `c` until they end or a request is complete; keeps what follows it.
  void consume(Conn& c, const char* data, size_t n, Clock::time_point now) {
    const uint64_t id = c.id;  // `c` is gone once its connection closes
    size_t at = 0;
    while (at < n && conns.count(id) && c.phase == Phase::kRead) {
      const bool was_started = c.parser.started(), had_headers = c.parser.headers_done();
      at += c.parser.feed(data + at, n - at);
      if (!was_started && c.parser.started()) c.deadline = now + seconds(limits.header_timeout_s);
      if (c.parser.state() == RequestParser::State::kError) {
        answer_error(c, c.parser.error_status(), c.parser.error_message(), now);
        return;  // the rest is not read
      }
      if (!had_headers && c.parser.headers_done()) {
        c.t_headers = now;
        Request& req = c.parser.request();
        req.remote_addr = c.addr;
        req.remote_port = c.port;
        Response res;
        if (handlers.screen && handlers.screen(req, res)) {
          answer(c, res, req, now, c.parser.state() != RequestParser::State::kDone);
          return;
        }
        c.deadline = now + seconds(limits.body_timeout_s);
        if (c.parser.expects_continue() && c.parser.state() == RequestParser::State::kBody) {
          static const char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
          [[maybe_unused]] const ssize_t sent = ::send(c.fd, kContinue, sizeof(kContinue) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        }
      }
      if (c.parser.state() == RequestParser::State::kDone) on_request(c, now);
    }
    if (at < n && conns.count(id)) c.pending.append(data + at, n - at);
  }

  void on_readable(Conn& c, Clock::time_point now) {
    char buf[65536];
    // A bounded number of reads per wake-up: one busy client does not hold the others up.
    for (int i = 0; i < 16 && c.phase == Phase::kRead; ++i) {
      const ssize_t n = ::recv(c.fd, buf, sizeof(buf), 0);
      if (n > 0) {
        const uint64_t id = c.id;
        consume(c, buf, static_cast<size_t>(n), now);
        if (!conns.count(id)) return;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      close_conn(c.id);  // the client closed (mid-request or between requests) or failed
      return;
    }
  }

  void on_linger(Conn& c) {
    char buf[16384];
    while (true) {
      const ssize_t n = ::recv(c.fd, buf, sizeof(buf), 0);
      if (n > 0) continue;
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      close_conn(c.id);
      return;
    }
  }

  void on_event(uint64_t id, uint32_t events, Clock::time_point now) {
    const auto it = conns.find(id);
    if (it == conns.end()) return;
    Conn& c = *it->second;
    switch (c.phase) {
      case Phase::kWork:
        if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) close_conn(id);  // its job is dropped
        return;
      case Phase::kLinger:
        on_linger(c);
        return;
      case Phase::kWrite:
        if (events & (EPOLLHUP | EPOLLERR)) return close_conn(id);
        if (events & EPOLLOUT) flush(c, now);
        return;
      case Phase::kRead:
        on_readable(c, now);
        return;
    }
  }

  void finish_jobs(Clock::time_point now) {
    std::vector<std::shared_ptr<Job>> jobs;
    {
      std::lock_guard<std::mutex> lock(done_mutex);
      jobs.swap(done);
    }
    for (auto& job : jobs) {
      const auto it = conns.find(job->conn);
      if (it == conns.end() || it->second->job != job) continue;  // its client has gone
      Conn& c = *it->second;
      c.job.reset();
      c.t_headers = job->t_headers;
      answer(c, job->res, job->req, now, false);
    }
  }

  void check_deadlines(Clock::time_point now) {
    std::vector<uint64_t> late;
    for (const auto& [id, c] : conns)
      if (now >= c->deadline) late.push_back(id);
    for (const uint64_t id : late) {
      const auto it = conns.find(id);
      if (it == conns.end()) continue;
      Conn& c = *it->second;
      if (c.phase == Phase::kRead && c.parser.started()) {
        count(&ServerStats::timed_out);
        const bool body = c.parser.headers_done();
        answer_error(c, 408,
                     body ? "the request body did not arrive within " + std::to_string(static_cast<int>(limits.body_timeout_s)) + " s"
                          : "the request header did not arrive within " + std::to_string(static_cast<int>(limits.header_timeout_s)) + " s",
                     now);
      } else {
        if (c.phase == Phase::kWrite) count(&ServerStats::timed_out);
        close_conn(id);  // idle, an answer not taken, or done lingering
      }
    }
  }

  // Returns freed memory to the system once no request has been in work for kTrimAfterIdle.
  void trim_when_idle(Clock::time_point now) {
    bool working = false;
    for (const auto& [id, c] : conns) {
      // A body arriving, work, or an answer being written (a slow header alone is no work).
      if (c->phase == Phase::kWork || c->phase == Phase::kWrite || c->parser.headers_done()) working = true;
    }
    if (working) {
      last_work = now;
      trimmed = false;
      return;
    }
    if (trimmed || now - last_work < kTrimAfterIdle) return;
    trimmed = true;
#ifdef __GLIBC__
    ::malloc_trim(0);
#endif
  }

  void worker() {
    while (true) {
      std::shared_ptr<Job> job;
      {
        std::unique_lock<std::mutex> lock(queue_mutex);
        queue_cv.wait(lock, [&] { return workers_stop || !queue.empty(); });
        if (queue.empty()) return;  // stopping, nothing left
        job = std::move(queue.front());
        queue.pop_front();
      }
      count(&ServerStats::queued, -1);
      try {
        handlers.work(job->req, job->res, job->cancelled);
      } catch (const std::exception& e) {
        job->res = Response{};
        handlers.error(500, std::string("internal error: ") + e.what(), job->res);
      } catch (...) {
        job->res = Response{};
        handlers.error(500, "internal error", job->res);
      }
      {
        std::lock_guard<std::mutex> lock(done_mutex);
        done.push_back(std::move(job));
      }
      wake();
    }
  }

  void run() {
    {
      std::lock_guard<std::mutex> lock(run_mutex);
      if (ran) return;
      ran = true;
      if (listen_fd < 0) throw std::runtime_error("HttpServer::run before bind");
    }
    if (stop_requested) return;
    epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
    const int efd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (epoll_fd < 0 || efd < 0) throw std::runtime_error(std::string("cannot start the server: ") + std::strerror(errno));
    {
      std::lock_guard<std::mutex> lock(run_mutex);
      wake_fd = efd;
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kListenId;
    ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listen_fd, &ev);
    ev.data.u64 = kWakeId;
    ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, efd, &ev);
    std::vector<std::thread> workers;
    for (int i = 0; i < limits.threads; ++i) workers.emplace_back([this] { worker(); });

    Clock::time_point next_scan = Clock::now() + kScanEvery, stop_by{};
    epoll_event events[128];
    while (true) {
      const int n = ::epoll_wait(epoll_fd, events, 128, static_cast<int>(kScanEvery.count()));
      Clock::time_point now = Clock::now();
      for (int i = 0; i < n; ++i) {
        const uint64_t id = events[i].data.u64;
        if (id == kListenId) {
          if (!draining) accept_all(now);
        } else if (id == kWakeId) {
          uint64_t v;
          [[maybe_unused]] const ssize_t r = ::read(efd, &v, sizeof(v));
        } else {
          on_event(id, events[i].events, now);
        }
      }
      finish_jobs(now);
      // Pipelined requests of kept-alive connections, one at a time (a loop, not recursion).
      while (!ready.empty()) {
        const uint64_t id = ready.back();
        ready.pop_back();
        const auto it = conns.find(id);
        if (it == conns.end() || it->second->phase != Phase::kRead) continue;
        Conn& c = *it->second;
        std::string bytes;
        bytes.swap(c.pending);
        consume(c, bytes.data(), bytes.size(), now);
      }
      if (now >= next_scan) {
        check_deadlines(now);
        trim_when_idle(now);
        next_scan = now + kScanEvery;
        if (accept_paused && now >= accept_resume && !draining) {
          epoll_event lev{};
          lev.events = EPOLLIN;
          lev.data.u64 = kListenId;
          ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listen_fd, &lev);
          accept_paused = false;
        }
      }
      if (stop_requested && !draining) {
        draining = true;
        stop_by = now + kStopGrace;
        if (!accept_paused) ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, listen_fd, nullptr);
      }
      if (draining) {
        // Connections not waiting for an answer end now; the others once answered.
        std::vector<uint64_t> idle;
        for (const auto& [id, c] : conns)
          if (c->phase == Phase::kRead || c->phase == Phase::kLinger) idle.push_back(id);
        for (const uint64_t id : idle) close_conn(id);
        if (conns.empty() || now >= stop_by) break;
      }
    }
    std::vector<uint64_t> all;
    for (const auto& [id, c] : conns) all.push_back(id);
    for (const uint64_t id : all) close_conn(id);
    {
      std::lock_guard<std::mutex> lock(queue_mutex);
      workers_stop = true;
    }
    queue_cv.notify_all();
    for (auto& t : workers) t.join();
    {
      std::lock_guard<std::mutex> lock(run_mutex);
      wake_fd = -1;
      ::close(efd);
      ::close(listen_fd);
      listen_fd = -1;
    }
    ::close(epoll_fd);
    epoll_fd = -1;
  }
};

HttpServer::HttpServer(ServerLimits limits, Handlers handlers)
    : impl_(std::make_unique<Impl>(limits, std::move(handlers))) {}
HttpServer::~HttpServer() = default;
int HttpServer::bind(const std::string& host, int port) { return impl_->bind(host, port); }
void HttpServer::run() { impl_->run(); }
void HttpServer::stop() { impl_->stop(); }
ServerStats HttpServer::stats() const {
  std::lock_guard<std::mutex> lock(impl_->stats_mutex);
  return impl_->st;
}

}  // namespace fervid::http
