// Settings the benchmark programs read from the environment (FERVID_BENCH_*).
#pragma once

#include <cstdlib>
#include <iostream>
#include <string>

namespace fervid::bench {

inline std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// FERVID_BENCH_THREADS (unset: 0 = every core); -1 after printing why, when it is not a count.
inline int threads_from_env(const char* program) {
  const std::string threads = env("FERVID_BENCH_THREADS");
  int n = 0;
  try {
    size_t used = 0;
    n = threads.empty() ? 0 : std::stoi(threads, &used);
    if (!threads.empty() && used != threads.size()) n = -1;
  } catch (const std::exception&) {
    n = -1;
  }
  if (n < 0) std::cerr << program << ": FERVID_BENCH_THREADS is '" << threads << "', expected a count >= 0\n";
  return n < 0 ? -1 : n;
}

}  // namespace fervid::bench
