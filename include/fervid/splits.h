// Train/test splits (design.md section 5). Seeded and deterministic across platforms (own
// Fisher-Yates on a 64-bit Mersenne twister). Torch-free.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "fervid/dataset.h"

namespace fervid {

// The samples of a named split: "Training", "PublicTest", "PrivateTest" (or the folder names
// parse_split() accepts), or "all" (every sample, in order). An unknown name is a
// std::invalid_argument that names it and the splits there are. The one place a split name
// becomes indices (train, eval, calibrate, ablate, data export).
std::vector<size_t> split_indices(const Dataset& ds, const std::string& name);
// The splits `ds` has samples in, then "all": "Training, PublicTest, all".
std::string splits_present(const Dataset& ds);

// Fisher-Yates shuffle of `v` driven by mt19937_64(seed).
void seeded_shuffle(std::vector<size_t>& v, uint64_t seed);

// The paper's protocol: a seeded random split of all samples, `test_fraction` (0.1 for 9:1) to
// the test side, stratified by label (each class split in the same ratio, rounded). Not
// subject-independent: CK+'s near-identical frames of one subject can land on both sides.
std::pair<std::vector<size_t>, std::vector<size_t>> random_split(const Dataset& ds, double test_fraction,
                                                                 uint64_t seed);

// Subject-independent k folds: all samples of one subject fall in one fold; subjects are
// assigned (largest first, ties in seeded order) to the fold that keeps the per-class counts
// closest to an even share, so folds are stratified where the subjects allow it. Every
// sample must have a subject id (>= 0). Returns k lists of sample indices.
std::vector<std::vector<size_t>> subject_kfold(const Dataset& ds, int k, uint64_t seed);

}  // namespace fervid
