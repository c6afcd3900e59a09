// CK+ protocols from one call (design.md section 5): subject-independent k-fold cross-validation
// (the honest number) and the paper's seeded random 9:1 split. Each fold is a full `train` run
// in its own folder; a fold's score is the accuracy of the LAST epoch's model on the held-out
// fold (no checkpoint is chosen on test data).
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "fervid/trainer.h"

namespace fervid {

struct ProtocolResult {
  std::string protocol;              // "subject-10-fold" or "random-9:1"
  std::vector<double> accuracies;    // one per fold (one for the random split)
  double mean = 0, std = 0;          // std: population standard deviation over folds
};

// Runs `folds` trainings of `base` (its data must carry subject ids), fold i held out, in
// out_dir/fold-i. `base.run_dir`, `folds`, `fold` and `val_fraction` are overridden.
ProtocolResult subject_cross_validation(TrainConfig base, int folds, const std::string& out_dir,
                                        const std::string& command_line = "", const TrainCallbacks& callbacks = {});

// One training with a seeded, stratified random 10% held out, in out_dir/random-split.
ProtocolResult random_split_protocol(TrainConfig base, const std::string& out_dir, const std::string& command_line = "",
                                     const TrainCallbacks& callbacks = {});

nlohmann::json to_json(const ProtocolResult& r);

// `fervid cv`: the protocols `protocols` names ("subject", "random" or "both") on `base`, in
// base.run_dir (subject folds: base.folds, or 10 when 0), then the reports: base.run_dir/cv.json
// (data, command, configuration, each protocol's result) and, when built with OpenCV, cv.png
// (the accuracy of every fold and of the random split). An unavailable device fails first.
struct CvReport {
  std::optional<ProtocolResult> subject, random;
  std::vector<std::string> files;  // the reports written
};
CvReport run_cv(const TrainConfig& base, const std::string& protocols, const std::string& command_line = "",
                const TrainCallbacks& callbacks = {});

// Mean and population standard deviation of per-fold scores (0, 0 when empty).
std::pair<double, double> mean_and_std(const std::vector<double>& values);

}  // namespace fervid
