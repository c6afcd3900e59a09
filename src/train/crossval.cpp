#include "fervid/crossval.h"

#include <cmath>
#include <filesystem>
#include <tuple>

namespace fervid {

namespace {
void summarise(ProtocolResult& r) { std::tie(r.mean, r.std) = mean_and_std(r.accuracies); }

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

std::pair<double, double> mean_and_std(const std::vector<double>& values) {
  if (values.empty()) return {0, 0};
  double sum = 0;
  for (double a : values) sum += a;
  const double mean = sum / static_cast<double>(values.size());
  double var = 0;
  for (double a : values) var += (a - mean) * (a - mean);
  return {mean, std::sqrt(var / static_cast<double>(values.size()))};
}

nlohmann::json to_json(const ProtocolResult& r) {
  return {{"protocol", r.protocol}, {"accuracies", r.accuracies}, {"mean", r.mean}, {"std", r.std},
          {"score", "accuracy of the last epoch's model on the held-out samples"}};
}

}  // namespace fervid
