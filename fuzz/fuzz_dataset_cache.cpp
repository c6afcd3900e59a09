// The dataset cache's parser from bytes (parse_dataset_cache): header, section table, labels,
// splits, soft targets, origins. Bad input is a DataError (the cache is then rebuilt).
#include <cstddef>
#include <cstdint>

#include "fervid/cache.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    fervid::parse_dataset_cache(reinterpret_cast<const char*>(data), size, "fuzz.fvds");
  } catch (const fervid::DataError&) {
  }
  return 0;
}
