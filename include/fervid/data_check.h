// `fervid data check`: what is in a dataset and what is wrong with it (design.md section 5:
// FER2013's known defects are reported, not silently fixed). Torch-free.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "fervid/dataset.h"

namespace fervid {

struct DataCheck {
  size_t samples = 0;
  size_t subjects = 0;  // distinct subject ids (CK+), 0 when unknown
  // counts[split][class]; class num_classes holds unlabelled samples.
  std::array<std::vector<size_t>, kNumSplits> counts;
  // Exact duplicates (byte-identical images).
  size_t duplicate_groups = 0;        // groups of >= 2 identical images, any splits
  size_t images_in_duplicate_groups = 0;
  size_t conflicting_label_groups = 0;  // groups whose members carry different labels
  // within[s]: images of split s with an identical image earlier in the same split.
  std::array<size_t, kNumSplits> duplicates_within{};
  // across[a][b] (a < b): images of split b that also occur in split a.
  std::array<std::array<size_t, kNumSplits>, kNumSplits> duplicates_across{};
  size_t blank = 0;     // every pixel 0 (all black)
  size_t constant = 0;  // every pixel the same value (blank included)
  std::vector<std::string> blank_origins;  // where the blank images are (first 100)
  std::vector<std::string> cross_split_examples;  // "PublicTest a == Training b" (first 20)
};

DataCheck check_dataset(const Dataset& ds);

}  // namespace fervid
