// `fervid ablate`: the paper's comparisons under one budget and one seed (design.md sections
// 2, 3 and 6). Each arm is a network variant or a loss setting; every arm trains with the same
// base configuration, seed and budget, and is scored on data it never chose a checkpoint on:
//  - split protocol (FER2013): train on base.train_split, keep the best epoch on
//    base.val_split, report on `test_split`;
//  - fold protocol (CK+, folds > 0): subject-independent k-fold; each fold's last-epoch model
//    predicts its held-out subjects, and the metrics pool every fold's predictions (per-fold
//    accuracies give the spread).
// Arm folders that hold a finished result.json are reused, so an interrupted ablation started
// again with the same options continues where it stopped. Only with the same options: each
// result records its arm's identity (the training's run_identity, train_options.h, and the test
// split) and its SHA-256; an arm folder of another configuration is refused, naming the arm and
// the first differing field.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <vector>

#include "fervid/evaluate.h"
#include "fervid/trainer.h"

namespace fervid {

struct AblationArm {
  std::string name;   // folder-safe, e.g. "mcsa" or "ce+center+dda-1"
  std::string group;  // "variant" or "loss"
  Variant variant = Variant::kMcsa;
  LossConfig loss;
};

// The five variants (cross-entropy only), then the loss settings on `mcsa`: CE, CE + center,
// CE + center + separation for each gamma of each form. Label smoothing and center_alpha come
// from `base`.
std::vector<AblationArm> default_ablation_arms(const LossConfig& base, double lambda_c,
                                               const std::vector<double>& island_gammas,
                                               const std::vector<double>& dda_gammas);

struct AblationOptions {
  TrainConfig base;                     // data, model width/input, optimiser, budget, seed
  std::string test_split = "PrivateTest";  // split protocol
  int folds = 0;                        // > 0: subject-independent fold protocol
};

struct AblationRow {
  AblationArm arm;
  std::string same_run_as;              // an earlier arm with the identical training (reused)
  EvalMetrics metrics;                  // on the test split, or pooled over held-out folds
  std::vector<double> fold_accuracies;  // fold protocol
  double fold_std = 0;
  double val_accuracy = 0;              // split protocol: the chosen epoch's validation accuracy
  int epochs = 0;                       // epochs trained (per fold for the fold protocol)
  double train_seconds = 0;
  int64_t parameters = 0;
};

struct AblationCallbacks {
  std::function<void(const AblationArm&, int index, int count)> arm_start;
  std::function<void(const AblationRow&)> arm_done;
  TrainCallbacks train;
};

// The arms named in `names` (comma-separated, in that order) of `arms`; all when empty.
// std::invalid_argument naming an unknown arm and the known ones.
std::vector<AblationArm> select_ablation_arms(const std::vector<AblationArm>& arms, const std::string& names);

// The budget and protocol every arm shares, in a sentence for the report.
std::string ablation_budget(const AblationOptions& options);

struct AblationReport {
  std::vector<AblationRow> rows;  // one per arm, in order
  std::string budget;             // ablation_budget()
  std::string markdown;           // ablation.md's text
  std::vector<std::string> files; // the reports written
};

// Runs every arm in out_dir/<arm.name>/, then writes the reports: out_dir/ablation.json (the
// command, budget, configuration and rows), ablation.md (ablation_markdown) and, when built with
// OpenCV, ablation.png (accuracy, macro-F1 and separation per arm). std::runtime_error naming
// the arm when an arm folder holds a result of another configuration.
AblationReport run_ablation(const AblationOptions& options, const std::vector<AblationArm>& arms,
                            const std::string& out_dir, const std::string& command_line = "",
                            const AblationCallbacks& callbacks = {});

nlohmann::json to_json(const AblationRow& row, const std::vector<std::string>& class_names);
AblationRow ablation_row_from_json(const nlohmann::json& j);

// The paper's Table 1 layout: overall accuracy; angry, happy and sad recall; macro-F1; and the
// embedding distances, one table for the variants and one for the losses.
std::string ablation_markdown(const std::vector<AblationRow>& rows, const std::vector<std::string>& class_names,
                              const std::string& title, const std::string& budget);

}  // namespace fervid
