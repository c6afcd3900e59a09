// What HTTP costs on top of recognition: the demo image (or FERVID_BENCH_IMAGE) recognised by
// Analyzer::analyze directly, decoded from its bytes first, and POSTed to an in-process
// fervid::Server on a loopback port (cpp-httplib's client), with the model's face recipe and
// (*Haar) with a version-1 file's (the Haar cascade). A program, not a test.
// FERVID_BENCH_MODEL (default: the shipped model), FERVID_BENCH_THREADS (unset or 0: every core).
//
//   fervid_bench_server --benchmark_format=json
#include <benchmark/benchmark.h>
#include <httplib.h>

#include "bench_env.h"

#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>
#include <thread>

#include "fervid/analyzer.h"
#include "fervid/classifier.h"
#include "fervid/image_io.h"
#include "fervid/runtime.h"
#include "fervid/server.h"

namespace {

using fervid::bench::env;

struct Fixture {
  std::string image_path;
  std::string bytes;
  std::shared_ptr<const fervid::Analyzer> analyzer;  // the model's recipe
  std::shared_ptr<const fervid::Analyzer> haar;      // as a version-1 file is served
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

const uint8_t* data_of(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }

using AnalyzerPtr = std::shared_ptr<const fervid::Analyzer> Fixture::*;

void BM_AnalyzeDecoded(benchmark::State& state, AnalyzerPtr which) {
  const auto& f = fixture();
  const cv::Mat image = fervid::decode_image(data_of(f.bytes), f.bytes.size(), f.image_path, {});
  for (auto _ : state) benchmark::DoNotOptimize((f.*which)->analyze(image).size());
}

void BM_DecodeAndAnalyze(benchmark::State& state, AnalyzerPtr which) {
  const auto& f = fixture();
  for (auto _ : state) {
    const cv::Mat image = fervid::decode_image(data_of(f.bytes), f.bytes.size(), f.image_path, {});
    benchmark::DoNotOptimize((f.*which)->analyze(image).size());
  }
}

void BM_HttpPostAnalyze(benchmark::State& state, AnalyzerPtr which) {
  const auto& f = fixture();
  fervid::ServerOptions options;
  options.port = 0;
  fervid::Server server(f.*which, options);
  const int port = server.bind();
  std::thread serving([&] { server.run(); });
  {
    httplib::Client client("127.0.0.1", port);
    client.set_read_timeout(120);
    client.set_tcp_nodelay(true);
    for (auto _ : state) {
      const auto r = client.Post("/v1/analyze", f.bytes, "application/octet-stream");
      if (!r || r->status != 200) {
        state.SkipWithError("POST /v1/analyze failed");
        break;
      }
      benchmark::DoNotOptimize(r->body.size());
    }
  }
  server.stop();
  serving.join();
}

}  // namespace

int main(int argc, char** argv) {
  const int n = fervid::bench::threads_from_env("fervid_bench_server");
  if (n < 0) return 2;
  fervid::configure_runtime(n);
  auto& f = fixture();
  f.image_path = env("FERVID_BENCH_IMAGE").empty() ? std::string(FERVID_EXAMPLES_DIR) + "/astronaut.png"
                                                    : env("FERVID_BENCH_IMAGE");
  const std::string model = env("FERVID_BENCH_MODEL").empty() ? fervid::default_model_path() : env("FERVID_BENCH_MODEL");
  try {
    std::ifstream in(f.image_path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + f.image_path);
    f.bytes.assign(std::istreambuf_iterator<char>(in), {});
    const fervid::AnalyzerOptions options;  // named: GCC 12 warns falsely about a default argument's temporary
    f.analyzer = std::make_shared<const fervid::Analyzer>(model, options);
    fervid::AnalyzerOptions haar_options;  // as a version-1 file is served: the Haar cascade, margin 0.1
    haar_options.recipe = fervid::FaceRecipeOverrides::all_of(fervid::FaceRecipe::version1());
    f.haar = std::make_shared<const fervid::Analyzer>(model, haar_options);
  } catch (const std::exception& e) {
    std::cerr << "fervid_bench_server: " << e.what() << "\n";
    return 1;
  }
  benchmark::AddCustomContext("fervid_commit", FERVID_GIT_COMMIT);
  benchmark::AddCustomContext("model", model);
  benchmark::AddCustomContext("image", f.image_path);
  benchmark::AddCustomContext("threads", std::to_string(fervid::runtime_threads()));
  for (const auto& [suffix, which] : {std::pair<std::string, AnalyzerPtr>{"", &Fixture::analyzer}, {"Haar", &Fixture::haar}}) {
    benchmark::RegisterBenchmark(("BM_AnalyzeDecoded" + suffix).c_str(), BM_AnalyzeDecoded, which)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
    benchmark::RegisterBenchmark(("BM_DecodeAndAnalyze" + suffix).c_str(), BM_DecodeAndAnalyze, which)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
    benchmark::RegisterBenchmark(("BM_HttpPostAnalyze" + suffix).c_str(), BM_HttpPostAnalyze, which)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
