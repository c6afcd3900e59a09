// Forward (batch 1, inference) and training-step (batch 32) speed of the network family.
// A program, not a test: `fervid_bench_model --benchmark_format=json` for machine-readable
// output; images/s is the `items_per_second` counter (wall-clock: UseRealTime, since libtorch
// works on several threads and CPU time of the main thread alone would overstate it); counters
// p50_ms, p90_ms and mean_ms per call (bench_timing.h). Compare runs as ratios on one machine.
#include <benchmark/benchmark.h>

#include <torch/optim/sgd.h>

#include "bench_timing.h"

#include "fervid/losses.h"
#include "fervid/model.h"
#include "fervid/runtime.h"
#include "fervid/train_step.h"

using namespace fervid;

namespace {
ModelConfig config_for(const benchmark::State& state) {
  ModelConfig c;
  c.variant = static_cast<Variant>(state.range(0));
  c.width = static_cast<double>(state.range(1)) / 100.0;
  c.input_size = static_cast<int>(state.range(2));
  return c;
}

void BM_InferBatch1(benchmark::State& state) {
  torch::manual_seed(0);
  MCSANet net(config_for(state));
  net->eval();
  torch::NoGradGuard no_grad;
  const int n = net->config().input_size;
  auto x = torch::randn({1, 1, n, n});
  for (int i = 0; i < 3; ++i) net->forward(x);  // warm-up: oneDNN primitive creation
  bench::time_each_call(state, [&] { benchmark::DoNotOptimize(net->forward(x).logits.data_ptr<float>()); });
  state.SetItemsProcessed(state.iterations());
}

// The inference path the Analyzer uses: BatchNorm folded into the convolutions, InferenceMode.
void BM_InferBatch1Folded(benchmark::State& state) {
  torch::manual_seed(0);
  MCSANet net(config_for(state));
  net->eval();
  net->fold_batchnorm();
  c10::InferenceMode guard;
  const int n = net->config().input_size;
  auto x = torch::randn({1, 1, n, n});
  for (int i = 0; i < 3; ++i) net->forward(x);
  bench::time_each_call(state, [&] { benchmark::DoNotOptimize(net->forward(x).logits.data_ptr<float>()); });
  state.SetItemsProcessed(state.iterations());
}

void BM_TrainStepBatch32(benchmark::State& state) {
  torch::manual_seed(0);
  MCSANet net(config_for(state));
  net->train();
  const int n = net->config().input_size;
  LossConfig lc;
  lc.lambda_c = 0.01;
  FerLoss loss(lc, 7, net->config().embedding_dim());
  torch::optim::SGD opt(net->parameters(), torch::optim::SGDOptions(0.01).momentum(0.9).weight_decay(5e-4));
  auto x = torch::randn({32, 1, n, n});
  auto y = torch::randint(0, 7, {32}, torch::kLong);
  auto step = [&] { train_step(net, loss, opt, x, y); };
  step();
  bench::time_each_call(state, step);
  state.SetItemsProcessed(32 * state.iterations());
}

constexpr int64_t kVgg = static_cast<int64_t>(Variant::kVgg16);
constexpr int64_t kMcsa = static_cast<int64_t>(Variant::kMcsa);
}  // namespace

BENCHMARK(BM_InferBatch1)
    ->ArgNames({"variant", "width%", "input"})
    ->Args({kMcsa, 25, 48})->Args({kMcsa, 50, 48})->Args({kMcsa, 100, 48})->Args({kVgg, 25, 48})
    ->Unit(benchmark::kMillisecond)->MinTime(1.0)->UseRealTime();
BENCHMARK(BM_InferBatch1Folded)
    ->ArgNames({"variant", "width%", "input"})
    ->Args({kMcsa, 25, 48})->Args({kMcsa, 50, 48})->Args({kVgg, 25, 48})
    ->Unit(benchmark::kMillisecond)->MinTime(1.0)->UseRealTime();
BENCHMARK(BM_TrainStepBatch32)
    ->ArgNames({"variant", "width%", "input"})
    ->Args({kMcsa, 25, 48})->Args({kVgg, 25, 48})
    ->Unit(benchmark::kMillisecond)->MinTime(2.0)->UseRealTime();

int main(int argc, char** argv) {
  configure_runtime(0);
  benchmark::Initialize(&argc, argv);
  benchmark::AddCustomContext("fervid_commit", FERVID_GIT_COMMIT);
  benchmark::AddCustomContext("threads", std::to_string(runtime_threads()));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
