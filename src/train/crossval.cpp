#include "fervid/crossval.h"

#include <cmath>
#include <filesystem>
#include <stdexcept>
#include <tuple>

#include "fervid/atomic_file.h"
#include "fervid/json_text.h"
#include "fervid/train_step.h"
#ifdef FERVID_WITH_OPENCV
#include "fervid/plot.h"
#endif

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

CvReport run_cv(const TrainConfig& base, const std::string& protocols, const std::string& command_line,
                const TrainCallbacks& callbacks) {
  if (protocols != "subject" && protocols != "random" && protocols != "both") {
    throw std::invalid_argument("cv: protocol '" + protocols + "' is not one of subject, random or both");
  }
  resolve_device(base.device);  // an unavailable device fails before any work
  const int folds = base.folds > 0 ? base.folds : 10;
  const std::filesystem::path out(base.run_dir);
  std::filesystem::create_directories(out);
  CvReport report;
  nlohmann::json j = {{"data", base.data}, {"command", command_line}, {"train_config", to_json(base)}};
  std::vector<std::string> bars;  // cv.png: one bar per held-out set
  std::vector<double> accuracies;
  if (protocols != "random") {
    report.subject = subject_cross_validation(base, folds, base.run_dir, command_line, callbacks);
    j["subject_cv"] = to_json(*report.subject);
    for (size_t f = 0; f < report.subject->accuracies.size(); ++f) {
      bars.push_back("fold " + std::to_string(f));
      accuracies.push_back(report.subject->accuracies[f]);
    }
  }
  if (protocols != "subject") {
    report.random = random_split_protocol(base, base.run_dir, command_line, callbacks);
    j["random_split"] = to_json(*report.random);
    bars.push_back("random 9:1");
    accuracies.push_back(report.random->mean);
  }
  write_file_atomically((out / "cv.json").string(), dump_json(j, 2) + "\n");
  report.files.push_back((out / "cv.json").string());
#ifdef FERVID_WITH_OPENCV
  write_bar_chart((out / "cv.png").string(), "cv: " + std::filesystem::path(base.data).filename().string(), bars,
                  {Series{"accuracy (last epoch, held out)", accuracies, 0}});
  report.files.push_back((out / "cv.png").string());
#endif
  return report;
}

nlohmann::json to_json(const ProtocolResult& r) {
  return {{"protocol", r.protocol}, {"accuracies", r.accuracies}, {"mean", r.mean}, {"std", r.std},
          {"score", "accuracy of the last epoch's model on the held-out samples"}};
}

}  // namespace fervid
