// The TF.js graph reader (model.json: topology, attributes, weights manifest) over the tiny
// test graph's weight shard. Bad input is a ModelFileError naming the file and node.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "fervid/model_io.h"
#include "fervid/runtime.h"
#include "fervid/tfjs_graph.h"

namespace fs = std::filesystem;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A folder of our own with the shard the tiny graph names; model.json rewritten per input.
  static const fs::path dir = [] {
    fervid::configure_runtime(1);
    const fs::path d = fs::temp_directory_path() / ("fervid-fuzz-tfjs-" + std::to_string(::getpid()));
    fs::create_directories(d);
    fs::copy_file(FERVID_TFJS_TINY_DIR "/weights.bin", d / "weights.bin", fs::copy_options::overwrite_existing);
    return d;
  }();
  const fs::path json = dir / "model.json";
  {
    std::ofstream out(json, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  for (const auto engine : {fervid::TfjsEngine::kFastest, fervid::TfjsEngine::kLibtorch}) {
    try {
      const fervid::TfjsGraph g(json.string(), engine);
      (void)g.output_names();
    } catch (const fervid::ModelFileError&) {
    }
  }
  return 0;
}
