// Per-call latency percentiles for the benchmark programs: Google Benchmark reports the mean time
// per iteration; a latency figure also wants the spread (bench/compare_with_pytorch.py reads
// these counters beside Python's own per-call times).
#pragma once

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <vector>

namespace fervid::bench {

// The q-quantile (0..1) of `v` by nearest rank (v sorted in place); 0 for an empty `v`.
inline double nearest_rank(std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto rank = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
  return v[std::min(v.size() - 1, rank > 0 ? rank - 1 : 0)];
}

// Runs `call` once per benchmark iteration, timing each call on the steady clock (~50 ns of
// overhead), and sets the counters p50_ms, p90_ms and mean_ms (per call, wall time).
template <typename F>
void time_each_call(benchmark::State& state, F&& call) {
  using clock = std::chrono::steady_clock;
  std::vector<double> ms;
  ms.reserve(4096);
  double sum = 0;
  for (auto _ : state) {
    const auto t0 = clock::now();
    call();
    const double t = std::chrono::duration<double, std::milli>(clock::now() - t0).count();
    ms.push_back(t);
    sum += t;
  }
  const double n = static_cast<double>(std::max<size_t>(1, ms.size()));
  state.counters["mean_ms"] = sum / n;
  state.counters["p50_ms"] = nearest_rank(ms, 0.5);
  state.counters["p90_ms"] = nearest_rank(ms, 0.9);
}

}  // namespace fervid::bench
