#include "fervid/crossval.h"

#include <cmath>
#include <filesystem>

namespace fervid {

namespace {
void summarise(ProtocolResult& r) {
  double sum = 0;
  for (double a : r.accuracies) sum += a;
  r.mean = r.accuracies.empty() ? 0 : sum / static_cast<double>(r.accuracies.size());
  double var = 0;
  for (double a : r.accuracies) var += (a - r.mean) * (a - r.mean);
  r.std = r.accuracies.empty() ? 0 : std::sqrt(var / static_cast<double>(r.accuracies.size()));
}

double held_out_accuracy(const TrainResult& t) {
  if (t.epochs.empty()) throw std::runtime_error("cross-validation: a fold trained no epoch");
  return t.epochs.back().val_accuracy;  // the last model, not the best-on-test one
}
}  // namespace

ProtocolResult subject_cross_validation(TrainConfig base, int folds, const std::string& out_dir,
                                        const std::string& command_line, const TrainCallbacks& callbacks) {
  ProtocolResult r;
  r.protocol = "subject-" + std::to_string(folds) + "-fold";
  base.folds = folds;
  base.val_fraction = 0;
  base.train_split = base.val_split = "all";
  for (int f = 0; f < folds; ++f) {
    auto c = base;
    c.fold = f;
    c.run_dir = (std::filesystem::path(out_dir) / ("fold-" + std::to_string(f))).string();
    r.accuracies.push_back(held_out_accuracy(train(c, command_line, callbacks)));
  }
  summarise(r);
  return r;
}

ProtocolResult random_split_protocol(TrainConfig base, const std::string& out_dir, const std::string& command_line,
                                     const TrainCallbacks& callbacks) {
  ProtocolResult r;
  r.protocol = "random-9:1";
  base.folds = 0;
  base.val_fraction = 0.1;
  base.train_split = "all";
  base.run_dir = (std::filesystem::path(out_dir) / "random-split").string();
  r.accuracies.push_back(held_out_accuracy(train(base, command_line, callbacks)));
  summarise(r);
  return r;
}

nlohmann::json to_json(const ProtocolResult& r) {
  return {{"protocol", r.protocol}, {"accuracies", r.accuracies}, {"mean", r.mean}, {"std", r.std},
          {"score", "accuracy of the last epoch's model on the held-out samples"}};
}

}  // namespace fervid
