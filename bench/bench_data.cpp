// Data pipeline speed on FER2013 (needs FERVID_DATA): parsing the CSV, the cache key and
// loading the cache (together: what a training start pays, target < 1 s), and the batch
// loader with augmentation at 48x48 (target: >= 5,000 samples/s on 2 cores).
// `fervid_bench_data --benchmark_format=json`; samples/s is `items_per_second`.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "fervid/cache.h"
#include "fervid/data_source.h"
#include "fervid/loader.h"
#include "fervid/readers.h"
#include "fervid/runtime.h"

using namespace fervid;
namespace fs = std::filesystem;

namespace {
std::string g_csv;
std::string g_cache_dir;

const Dataset& fer() {
  static const Dataset ds = read_fer2013_csv(g_csv);
  return ds;
}

void BM_ParseFer2013Csv(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(read_fer2013_csv(g_csv).size());
  state.SetItemsProcessed(state.iterations() * 35887);
}

void BM_LoadFer2013Cache(benchmark::State& state) {
  const std::string path = g_cache_dir + "/bench.fvds";
  save_dataset_cache(path, fer(), "bench");
  for (auto _ : state) benchmark::DoNotOptimize(load_dataset_cache(path, "bench").size());
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(fer().size()));
}

// What `fervid train` pays on every start once the cache exists: the cache key (the file's
// SHA-256, remembered in the cache folder while the file is unchanged: cache.h) plus loading
// the cache file. Must stay under 1 s; BM_Fer2013CacheKey is the hash without the memo.
void BM_OpenFer2013FromCache(benchmark::State& state) {
  DataSourceOptions o;
  o.use_cache = true;
  o.cache_dir = g_cache_dir + "/source";
  open_data_source(g_csv, o);  // builds the cache once
  for (auto _ : state) {
    auto src = open_data_source(g_csv, o);
    if (!src.cache_hit) state.SkipWithError("no cache hit");
    benchmark::DoNotOptimize(src.data.size());
  }
  state.SetItemsProcessed(state.iterations() * 35887);
}

// The key alone (hashing the file).
void BM_Fer2013CacheKey(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(cache_key({g_csv}, "fer2013"));
}

// A full pass over Training with the worker thread, the way training consumes it.
void BM_LoaderAugmented48(benchmark::State& state) {
  const auto train = fer().indices(Split::kTraining);
  LoaderOptions o;
  o.batch_size = 32;
  o.augment = state.range(0) ? AugmentOptions() : AugmentOptions::none();
  BatchLoader loader(fer(), train, o);
  int64_t epoch = 0, samples = 0;
  for (auto _ : state) {
    loader.start_epoch(epoch++);
    while (auto b = loader.next()) samples += b->images.size(0);
  }
  state.SetItemsProcessed(samples);
}
}  // namespace

BENCHMARK(BM_ParseFer2013Csv)->Unit(benchmark::kMillisecond)->Iterations(2);
BENCHMARK(BM_LoadFer2013Cache)->Unit(benchmark::kMillisecond)->Iterations(5);
BENCHMARK(BM_Fer2013CacheKey)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();
BENCHMARK(BM_OpenFer2013FromCache)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();
BENCHMARK(BM_LoaderAugmented48)->ArgName("augment")->Arg(1)->Arg(0)->Unit(benchmark::kMillisecond)->Iterations(2)->UseRealTime();

int main(int argc, char** argv) {
  const char* data = std::getenv("FERVID_DATA");
  if (!data || !*data) {
    std::cerr << "fervid_bench_data: set FERVID_DATA to the shared datasets folder (../shared/data)\n";
    return 2;
  }
  g_csv = std::string(data) + "/fer2013/fer2013.csv.gz";
  g_cache_dir = (fs::temp_directory_path() / ("fervid_bench_" + std::to_string(::getpid()))).string();
  fs::create_directories(g_cache_dir);
  configure_runtime(0);
  benchmark::Initialize(&argc, argv);
  benchmark::AddCustomContext("fervid_commit", FERVID_GIT_COMMIT);
  benchmark::AddCustomContext("threads", std::to_string(runtime_threads()));
  // What else ran on the machine (a training job, ...): timings depend on it.
  if (const char* note = std::getenv("FERVID_BENCH_NOTE"); note && *note) benchmark::AddCustomContext("note", note);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  fs::remove_all(g_cache_dir);
  return 0;
}
