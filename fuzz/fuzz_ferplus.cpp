// The FER+ votes reader (apply_ferplus) against a small FER2013 stand-in of 9 rows, with the
// label rules, soft targets and the label mix. Bad input is a DataError.
#include <cstddef>
#include <cstdint>

#include "fervid/readers.h"
#include "fuzz_util.h"

namespace {

fervid::Dataset stand_in() {
  fervid::Dataset d;
  d.height = d.width = 2;
  d.num_classes = 7;
  const fervid::Split splits[3] = {fervid::Split::kTraining, fervid::Split::kPublicTest, fervid::Split::kPrivateTest};
  for (int i = 0; i < 9; ++i) {
    d.pixels.insert(d.pixels.end(), 4, static_cast<uint8_t>(i));
    d.labels.push_back(static_cast<int8_t>(i % 7));
    d.splits.push_back(splits[i / 3]);
    d.subjects.push_back(-1);
    d.origins.push_back("fer.csv:" + std::to_string(i + 2));
  }
  return d;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const fervid::Dataset base = stand_in();
  const fervid::fuzz::MemFile file(data, size);
  for (int variant = 0; variant < 3; ++variant) {
    fervid::FerPlusOptions o;
    o.labels = variant == 1 ? fervid::FerPlusOptions::Labels::kPlurality : fervid::FerPlusOptions::Labels::kMajority;
    o.soft_targets = variant == 1;
    o.mix = variant == 2 ? 0.5 : 0.0;
    fervid::Dataset d = base;
    fervid::ReadReport report;
    try {
      fervid::apply_ferplus(d, file.path(), o, &report);
      d.check_consistent();
    } catch (const fervid::DataError&) {
    }
  }
  return 0;
}
