// The FER2013 CSV reader (plain or gzip, chosen by the bytes), lenient and strict. Bad input is a
// DataError or a counted skip.
#include <cstddef>
#include <cstdint>

#include "fervid/readers.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const fervid::fuzz::MemFile file(data, size);
  for (const bool strict : {false, true}) {
    fervid::ReadOptions o;
    o.strict = strict;
    fervid::ReadReport report;
    try {
      const auto ds = fervid::read_fer2013_csv(file.path(), o, &report);
      ds.check_consistent();
    } catch (const fervid::DataError&) {
    }
  }
  return 0;
}
