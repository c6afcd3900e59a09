// Dataset readers that need no OpenCV: FER2013 CSV (plain or gzip) and FER+ votes.
// Readers stream their input and validate every field. An invalid entry is reported with its
// file, line and field; by default it is skipped and counted in the ReadReport, with
// `strict` it is a DataError. Structural problems (missing file, wrong header, truncated
// gzip: "<path>: truncated gzip stream ... after line N", N the last complete line) are
// always a DataError.
#pragma once

#include <string>

#include "fervid/dataset.h"

namespace fervid {

struct ReadOptions {
  bool strict = false;  // an invalid entry is an error instead of a counted skip
};

// Kaggle's `emotion,pixels,Usage`: emotion in 0..6, exactly 2,304 gray levels in 0..255,
// Usage one of Training / PublicTest / PrivateTest. Origins are "path:line".
Dataset read_fer2013_csv(const std::string& path, const ReadOptions& options = {},
                         ReadReport* report = nullptr);

// FER+ (`fer2013new.csv`), row-aligned with fer2013.csv: header `Usage,Image name,neutral,
// happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF`, 10 votes per image.
struct FerPlusOptions {
  enum class Labels {
    kMajority,   // FER+'s rule: after dropping single votes, one class holds > half the votes
    kPlurality,  // the most-voted class, ties excluded
  };
  Labels labels = Labels::kMajority;
  bool soft_targets = false;  // also fill Dataset::soft_targets with the vote distribution
  // In (0, 1]: keep FER2013's labels and every row, and fill Dataset::soft_targets with
  // (1 - mix) * onehot(FER2013 label) + mix * (FER+ votes over the 7 expressions); a row FER+
  // dropped, or whose votes are all contempt / unknown / not a face, keeps its one-hot target.
  // `labels` and `soft_targets` are then not used. 0: replace the labels (above).
  double mix = 0.0;
};

// Replaces `fer`'s labels with FER+'s. `fer` must be the full FER2013 file as read (35,887
// rows, none skipped), because FER+ is aligned by row. Rows FER+ dropped (empty image name),
// rows whose label would be unknown, not-a-face or contempt (not one of our 7 classes) and
// rows without a label under the chosen rule are removed and counted in `report`. With
// options.mix > 0 nothing is removed: FER2013's labels stay, mixed with FER+'s votes as soft
// targets (FerPlusOptions::mix); std::invalid_argument when mix is not in [0, 1].
void apply_ferplus(Dataset& fer, const std::string& ferplus_csv, const FerPlusOptions& options = {},
                   ReadReport* report = nullptr);

// The label a FER+ vote row gets (votes in FER+'s column order), or -1 (excluded; `why`, when
// given, then says which reason applied: too few votes, a tie, no majority, or a winner that is
// contempt, unknown or not-a-face). Exposed for tests: the rule in one place.
int ferplus_label(const int votes[10], FerPlusOptions::Labels rule, std::string* why = nullptr);

}  // namespace fervid
