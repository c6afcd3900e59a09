// A one-line progress display on stderr: rate and time left, redrawn in place on a terminal,
// one line every 10 seconds otherwise (logs).
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

namespace fervid::cli {

inline std::string format_duration(double seconds) {
  if (!(seconds >= 0)) return "?";
  const long s = static_cast<long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof(buf), "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  } else {
    std::snprintf(buf, sizeof(buf), "%ld:%02ld", s / 60, s % 60);
  }
  return buf;
}

class ProgressLine {
 public:
  ProgressLine() : tty_(::isatty(STDERR_FILENO) != 0) {}
  void show(const std::string& text, bool force = false) {
    const auto now = std::chrono::steady_clock::now();
    if (tty_) {
      std::fprintf(stderr, "\r\033[K%s", text.c_str());
      std::fflush(stderr);
      open_ = true;
    } else if (force || now - last_ >= std::chrono::seconds(10)) {
      std::fprintf(stderr, "%s\n", text.c_str());
      last_ = now;
    }
  }
  void finish() {
    if (tty_ && open_) std::fprintf(stderr, "\n");
    open_ = false;
  }

 private:
  bool tty_;
  bool open_ = false;
  std::chrono::steady_clock::time_point last_{};
};

}  // namespace fervid::cli
