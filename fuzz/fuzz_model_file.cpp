// The model-file parser from bytes (load_model_from_bytes): preamble, header JSON, face recipe,
// calibration, tensor table and weights. Bad input is a ModelFileError; nothing else may escape.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fervid/model_io.h"
#include "fervid/runtime.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool once = [] {
    fervid::configure_runtime(1);
    return true;
  }();
  (void)once;
  try {
    fervid::load_model_from_bytes(std::string(reinterpret_cast<const char*>(data), size), "fuzz.fervid");
  } catch (const fervid::ModelFileError&) {
  }
  return 0;
}
