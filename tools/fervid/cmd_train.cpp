// fervid train | cv | ablate: the training flags (train_flags.h: the option table, a --config
// file under them), then the library's run; what is printed on the console is all that is here.
#include <fmt/format.h>

#include <filesystem>
#include <iostream>
#include <memory>
#include <set>
#include <sstream>
#include <cstdio>

#include "commands.h"
#include "fervid/ablation.h"
#include "fervid/crossval.h"
#include "fervid/train_options.h"
#include "fervid/train_step.h"
#include "fervid/trainer.h"
#include "progress.h"
#include "train_flags.h"

namespace fervid::cli {

namespace {

// The training flags and --log-every, shared by train, cv and ablate.
struct RunFlags {
  TrainFlags train;
  int log_every = 0;

  void add_to(CLI::App* cmd) {
    train.add_to(cmd);
    cmd->add_option("--log-every", log_every, "Print a progress line every N batches (0: one redrawn line)")
        ->check(CLI::NonNegativeNumber);
  }
};

// `log_every` > 0: a plain line on stderr every that many batches (logs, and tests that must
// know how far a run got); else the redrawn progress line.
TrainCallbacks console_callbacks(std::shared_ptr<ProgressLine> line, int epochs, int log_every = 0) {
  TrainCallbacks cb;
  cb.progress = [line, epochs, log_every](int epoch, int64_t b, int64_t n, double loss, double acc, double rate,
                                          double left) {
    if (log_every <= 0 && b % 10 != 1 && b != n) return;  // the line needs no more than every 10th batch
    if (log_every > 0 && b % log_every != 0 && b != n) return;
    const auto text = fmt::format("epoch {}/{} [{}/{}] loss {:.4f} acc {:.1f}% {:.0f} img/s, {} left", epoch + 1, epochs,
                                  b, n, loss, 100 * acc, rate, format_duration(left));
    if (log_every > 0) {
      std::fprintf(stderr, "%s\n", text.c_str());
    } else {
      line->show(text);
    }
  };
  cb.epoch_end = [line](const std::string&, const std::vector<EpochMetrics>& h) {
    const auto& m = h.back();
    line->show(fmt::format("epoch {}: train loss {:.4f} acc {:.2f}% | val loss {:.4f} acc {:.2f}%{} | lr {:.3g} | {:.0f} s, {:.0f} img/s",
                           m.epoch + 1, m.train_loss, 100 * m.train_accuracy, m.val_loss, 100 * m.val_accuracy,
                           m.best ? " (best)" : "", m.lr, m.seconds, m.images_per_second),
               /*force=*/true);
    line->finish();
  };
  return cb;
}

// The run's summary: one JSON line on stdout; the calibration also in words on stderr.
void print_summary(const std::string& run_dir, const TrainResult& result) {
  nlohmann::json summary = {{"run_dir", run_dir}, {"best_epoch", result.best_epoch + 1},
                            {"best_val_accuracy", result.best_val_accuracy}, {"epochs_run", result.epochs.size()},
                            {"stopped_by_budget", result.stopped_early},
                            {"calibration", result.calibrated ? result.calibration.to_json() : nlohmann::json()}};
  if (result.calibrated) {
    const auto& fit = result.calibration.fit;
    std::cerr << fmt::format("calibrated best.fervid on {} ({} samples): temperature {:.3f}, NLL {:.4f} -> {:.4f}, "
                             "ECE {:.4f} -> {:.4f}\n",
                             fit.value("split", ""), fit.value("samples", 0), result.calibration.temperature,
                             fit.value("nll_before", 0.0), fit.value("nll_after", 0.0), fit.value("ece_before", 0.0),
                             fit.value("ece_after", 0.0));
  }
  std::cout << summary.dump() << "\n";
}

// --resume continues a run as it was configured: only where it runs and what is printed may change.
void refuse_flags_on_resume(const CLI::App* cmd) {
  const std::set<std::string> allowed = {"--resume", "--device", "--log-every", "--help"};
  for (const auto* o : cmd->get_options()) {
    if (o->count() > 0 && allowed.count(o->get_name()) == 0) {
      throw std::invalid_argument("train --resume continues the run as it was configured: " + o->get_name() +
                                  " cannot change it (--device and --log-every can)");
    }
  }
}

}  // namespace

void add_train_command(CLI::App& app, const GlobalOptions& global, const std::string& command_line) {
  auto f = std::make_shared<RunFlags>();
  auto resume = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand("train", "Train a network of the MCSA-VGGNet family (checkpoints, resume, curves)");
  cmd->add_option("--resume", *resume, "Continue the run in this folder from its last checkpoint");
  f->add_to(cmd);
  cmd->callback([f, resume, cmd, &global, command_line] {
    auto line = std::make_shared<ProgressLine>();
    TrainResult result;
    std::string run_dir;
    if (!resume->empty()) {
      refuse_flags_on_resume(cmd);
      run_dir = *resume;
      const auto config_file = run_dir + "/config.json";
      const int epochs = std::filesystem::exists(config_file) ? read_train_config_file(config_file).epochs : 0;
      std::string device;
      if (f->train.given("--device")) {
        TrainConfig given;
        f->train.apply(given);
        device = given.device;
      }
      std::cerr << "resuming " << run_dir << (device.empty() ? "" : " on " + device) << "\n";
      result = resume_training(run_dir, console_callbacks(line, epochs, f->log_every), device);
    } else {
      const auto c = f->train.resolve(global);
      if (c.run_dir.empty()) throw std::invalid_argument("train: give --out RUN_DIR (or --resume RUN_DIR)");
      run_dir = c.run_dir;
      const auto device = resolve_device(c.device);  // an unavailable device fails before any work
      std::cerr << fmt::format("training {} width {} input {} on {}{} -> {} ({})\n", to_string(c.model.variant),
                               c.model.width, c.model.input_size, c.data, c.expand_15x ? " (15x expansion)" : "",
                               c.run_dir, device.str());
      result = train(c, command_line, console_callbacks(line, c.epochs, f->log_every));
    }
    line->finish();
    print_summary(run_dir, result);
  });
}

void add_cv_command(CLI::App& app, const GlobalOptions& global, const std::string& command_line) {
  auto f = std::make_shared<RunFlags>();
  auto protocol = std::make_shared<std::string>("both");
  auto* cmd = app.add_subcommand("cv", "CK+ protocols: subject-independent k-fold cross-validation and the paper's random 9:1 split");
  f->add_to(cmd);
  cmd->add_option("--protocol", *protocol, "subject | random | both")->check(CLI::IsMember({"subject", "random", "both"}))->capture_default_str();
  cmd->callback([f, protocol, &global, command_line] {
    const auto c = f->train.resolve(global);
    if (c.run_dir.empty()) throw std::invalid_argument("cv: give --out DIR");
    auto line = std::make_shared<ProgressLine>();
    const auto report = run_cv(c, *protocol, command_line, console_callbacks(line, c.epochs, f->log_every));
    if (report.subject) {
      std::cout << fmt::format("subject-independent {}-fold: {:.2f}% +/- {:.2f}%\n", report.subject->accuracies.size(),
                               100 * report.subject->mean, 100 * report.subject->std);
    }
    if (report.random) std::cout << fmt::format("random 9:1 split: {:.2f}%\n", 100 * report.random->mean);
    for (const auto& file : report.files) std::cout << "wrote " << file << "\n";
  });
}

namespace {

std::vector<double> parse_numbers(const std::string& list, const char* flag) {
  std::vector<double> out;
  std::stringstream ss(list);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    size_t used = 0;
    double v = 0;
    try {
      v = std::stod(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || !(v > 0)) throw std::invalid_argument(fmt::format("{}: '{}' is not a positive number", flag, item));
    out.push_back(v);
  }
  return out;
}

}  // namespace

void add_ablate_command(CLI::App& app, const GlobalOptions& global, const std::string& command_line) {
  struct AblateFlags {
    std::string test_split = "PrivateTest", arms, island = "0.01,0.1", dda = "0.1,1";
    double center = 0.01;
  };
  auto f = std::make_shared<RunFlags>();
  auto a = std::make_shared<AblateFlags>();
  auto* cmd = app.add_subcommand("ablate",
                                 "The paper's comparison: five variants and the loss settings, same seed and budget; "
                                 "Markdown, JSON and a bar chart");
  f->add_to(cmd);
  auto* abl = "Ablation";
  cmd->add_option("--test-split", a->test_split, "Split the arms are scored on (with Usage splits)")->group(abl)->capture_default_str();
  cmd->add_option("--arms", a->arms, "Comma-separated arm names to run (default: all)")->group(abl);
  cmd->add_option("--center-weight", a->center, "lambda_c of the center-loss arms")->group(abl)->capture_default_str();
  cmd->add_option("--island-gammas", a->island, "gamma values of the island-form arms")->group(abl)->capture_default_str();
  cmd->add_option("--dda-gammas", a->dda, "gamma values of the dda-form arms")->group(abl)->capture_default_str();
  cmd->callback([f, a, &global, command_line] {
    const auto c = f->train.resolve(global);
    if (c.run_dir.empty()) throw std::invalid_argument("ablate: give --out DIR");
    if (!f->train.given("--epochs") && !f->train.given("--minutes") && !f->train.has_config_file())
      throw std::invalid_argument("ablate: state the budget of every arm with --epochs N or --minutes M");
    AblationOptions o;
    o.base = c;
    o.folds = c.folds;
    o.test_split = a->test_split;
    o.base.folds = 0;
    const auto arms = select_ablation_arms(default_ablation_arms(c.loss, a->center, parse_numbers(a->island, "--island-gammas"),
                                                                 parse_numbers(a->dda, "--dda-gammas")),
                                           a->arms);
    std::cerr << ablation_budget(o) << "\n";
    auto line = std::make_shared<ProgressLine>();
    AblationCallbacks cb;
    cb.train = console_callbacks(line, c.epochs, f->log_every);
    cb.arm_start = [](const AblationArm& arm, int i, int n) {
      std::cerr << fmt::format("[{}/{}] {} ({})\n", i + 1, n, arm.name, arm.group);
    };
    cb.arm_done = [](const AblationRow& r) {
      std::cerr << fmt::format("  {}: accuracy {:.2f}%, macro-F1 {:.4f}, inter/intra {:.3f}\n", r.arm.name,
                               100 * r.metrics.accuracy, r.metrics.macro_f1, r.metrics.embedding.ratio);
    };
    const auto report = run_ablation(o, arms, c.run_dir, command_line, cb);
    std::cout << report.markdown;
    for (const auto& file : report.files) std::cout << "wrote " << file << "\n";
  });
}

}  // namespace fervid::cli
