// Per-face latency of a given model file: fervid::load_model(FERVID_BENCH_MODEL), eval mode,
// batch 1 forward, and the same weights through fervid::Classifier; counters p50_ms, p90_ms and
// mean_ms per call (bench_timing.h). A program, not a test; bench/compare_with_pytorch.py --model FILE runs it
// beside Python PyTorch on the same weights. FERVID_BENCH_THREADS sets libtorch's intra-op
// threads (unset or 0: every core, as fervid_bench_model).
//
//   FERVID_BENCH_MODEL=models/x.fervid fervid_bench_model_file --benchmark_format=json
#include <benchmark/benchmark.h>

#include "bench_env.h"
#include "bench_timing.h"

#include <cstdlib>
#include <iostream>
#include <string>

#include "fervid/classifier.h"
#include "fervid/model.h"
#include "fervid/model_io.h"
#include "fervid/runtime.h"

namespace {

using fervid::bench::env;

void BM_ModelFileInferBatch1(benchmark::State& state, const std::string& path) {
  auto loaded = fervid::load_model(path);  // eval mode
  auto& net = loaded.net;
  torch::NoGradGuard no_grad;
  torch::manual_seed(0);
  const auto& c = net->config();
  auto x = torch::randn({1, c.in_channels, c.input_size, c.input_size});
  for (int i = 0; i < 3; ++i) net->forward(x);  // warm-up: oneDNN primitive creation
  fervid::bench::time_each_call(state, [&] { benchmark::DoNotOptimize(net->forward(x).logits.data_ptr<float>()); });
  state.SetItemsProcessed(state.iterations());
}

// What the Analyzer does per face: fervid::Classifier (BatchNorm folded, InferenceMode), a gray
// crop in, softmax probabilities out.
void BM_ModelFileClassifyFace(benchmark::State& state, const std::string& path) {
  const fervid::Classifier classifier(path);
  const int s = classifier.input_size();
  std::vector<uint8_t> face(static_cast<size_t>(s * s));
  for (size_t i = 0; i < face.size(); ++i) face[i] = static_cast<uint8_t>((i * 37 + i / 48 * 11) % 256);
  for (int i = 0; i < 3; ++i) classifier.classify(face.data());
  fervid::bench::time_each_call(state, [&] { benchmark::DoNotOptimize(classifier.classify(face.data()).label); });
  state.SetItemsProcessed(state.iterations());
}

}  // namespace

int main(int argc, char** argv) {
  const std::string path = env("FERVID_BENCH_MODEL");
  if (path.empty()) {
    std::cerr << "fervid_bench_model_file: set FERVID_BENCH_MODEL to a model file (.fervid)\n";
    return 2;
  }
  const int n = fervid::bench::threads_from_env("fervid_bench_model_file");
  if (n < 0) return 2;
  fervid::configure_runtime(n);
  try {
    fervid::read_model_config(path);  // a bad file fails here, with its message, not mid-run
  } catch (const std::exception& e) {
    std::cerr << "fervid_bench_model_file: " << e.what() << "\n";
    return 1;
  }
  benchmark::Initialize(&argc, argv);
  benchmark::AddCustomContext("fervid_commit", FERVID_GIT_COMMIT);
  benchmark::AddCustomContext("threads", std::to_string(fervid::runtime_threads()));
  benchmark::AddCustomContext("model", path);
  benchmark::RegisterBenchmark("BM_ModelFileInferBatch1", BM_ModelFileInferBatch1, path)
      ->Unit(benchmark::kMillisecond)->UseRealTime();  // no MinTime here: --benchmark_min_time governs
  benchmark::RegisterBenchmark("BM_ModelFileClassifyFace", BM_ModelFileClassifyFace, path)
      ->Unit(benchmark::kMillisecond)->UseRealTime();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
