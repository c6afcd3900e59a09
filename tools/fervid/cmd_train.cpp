// fervid train: options from flags or a JSON config (flags win), a new run or --resume.
#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <algorithm>
#include <cstdio>

#include "commands.h"
#include "data_source_flags.h"
#include "fervid/ablation.h"
#include "fervid/atomic_file.h"
#include "fervid/crossval.h"
#include "fervid/train_step.h"
#include "fervid/trainer.h"
#include "progress.h"
#ifdef FERVID_WITH_OPENCV
#include "fervid/plot.h"
#endif

namespace fervid::cli {

namespace {

struct TrainFlags {
  std::string config_file, resume;
  std::string data;
  DataSourceFlags source;  // --format --ferplus --ferplus-rule --strict --align, detector and CK+ flags
  bool soft_targets = false;
  std::string train_split = "Training", val_split = "PublicTest";
  double val_fraction = 0;
  int folds = 0, fold = 0;
  size_t max_train_samples = 0;
  bool expand_15x = false;
  std::string variant = "mcsa", multiscale = "auto";
  double width = 0.25, dropout = 0.5;
  int input = 48, reduction = 16;
  double lambda_c = 0, gamma = 0, label_smoothing = 0, center_alpha = 0.5;
  std::string form = "island", init_from;
  std::string optimizer = "sgd", schedule = "exp";
  double lr = 0.01, momentum = 0.9, weight_decay = 5e-4, lr_decay = 0.9, step_gamma = 0.1, minutes = 0;
  int batch = 32, epochs = 30, step_every = 10, warmup = 0;
  bool no_augment = false;
  double erase = 0, rotation = 10;
  uint64_t seed = 1;
  std::string device = "auto";
  int log_every = 0;
  std::string out;
};

// Copies every flag the user gave onto `c` (flags override the config file).
void apply_flags(const TrainFlags& f, CLI::App* cmd, TrainConfig& c) {
  auto given = [&](const char* name) { return cmd->count(name) > 0; };
  if (given("--data")) c.data = f.data;
  f.source.apply(cmd, c.source);
  if (given("--soft-targets")) c.source.soft_targets = f.soft_targets;
  if (given("--train-split")) c.train_split = f.train_split;
  if (given("--val-split")) c.val_split = f.val_split;
  if (given("--val-fraction")) c.val_fraction = f.val_fraction;
  if (given("--folds")) c.folds = f.folds;
  if (given("--fold")) c.fold = f.fold;
  if (given("--max-train-samples")) c.max_train_samples = f.max_train_samples;
  if (given("--expand-15x")) c.expand_15x = f.expand_15x;
  if (given("--variant")) c.model.variant = parse_variant(f.variant);
  if (given("--width")) c.model.width = f.width;
  if (given("--input")) c.model.input_size = f.input;
  if (given("--multiscale")) c.model.multiscale = f.multiscale == "auto" ? -1 : f.multiscale == "on" ? 1 : 0;
  if (given("--reduction")) c.model.se_reduction = f.reduction;
  if (given("--dropout")) c.model.dropout = f.dropout;
  if (given("--lambda-c")) c.loss.lambda_c = f.lambda_c;
  if (given("--gamma")) c.loss.gamma = f.gamma;
  if (given("--separation")) c.loss.form = parse_separation_form(f.form);
  if (given("--label-smoothing")) c.loss.label_smoothing = f.label_smoothing;
  if (given("--center-alpha")) c.loss.center_alpha = f.center_alpha;
  if (given("--init-from")) c.init_from = f.init_from;
  if (given("--optimizer")) c.optimizer = f.optimizer;
  if (given("--schedule")) c.schedule = f.schedule;
  if (given("--lr")) c.lr = f.lr;
  if (given("--momentum")) c.momentum = f.momentum;
  if (given("--weight-decay")) c.weight_decay = f.weight_decay;
  if (given("--lr-decay")) c.lr_decay = f.lr_decay;
  if (given("--step-every")) c.step_every = f.step_every;
  if (given("--step-gamma")) c.step_gamma = f.step_gamma;
  if (given("--warmup")) c.warmup_epochs = f.warmup;
  if (given("--minutes")) c.minutes = f.minutes;
  if (given("--batch")) c.batch_size = f.batch;
  if (given("--epochs")) c.epochs = f.epochs;
  if (given("--no-augment")) c.augment = AugmentOptions::none();
  if (given("--erase")) c.augment.erase_prob = f.erase;
  if (given("--rotation")) c.augment.max_rotation_deg = f.rotation;
  if (given("--seed")) c.seed = f.seed;
  if (given("--device")) c.device = f.device;
  if (given("--out")) c.run_dir = f.out;
}

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
  cb.epoch_end = [line](const std::string& run_dir, const std::vector<EpochMetrics>& h) {
    const auto& m = h.back();
    line->show(fmt::format("epoch {}: train loss {:.4f} acc {:.2f}% | val loss {:.4f} acc {:.2f}%{} | lr {:.3g} | {:.0f} s, {:.0f} img/s",
                           m.epoch + 1, m.train_loss, 100 * m.train_accuracy, m.val_loss, 100 * m.val_accuracy,
                           m.best ? " (best)" : "", m.lr, m.seconds, m.images_per_second),
               /*force=*/true);
    line->finish();
#ifdef FERVID_WITH_OPENCV
    write_training_curves(run_dir + "/curves.png", h);
#endif
  };
  return cb;
}

void register_train_flags(CLI::App* cmd, TrainFlags& flags) {
  auto* f = &flags;
  cmd->add_option("--config", f->config_file, "JSON training config (a run's config.json works); flags override it");
  cmd->add_option("--out", f->out, "Run folder to create");
  auto* data = "Data";
  cmd->add_option("--data", f->data, "FER2013 CSV, image folder, CK+48, CK+ or photo folder")->group(data);
  f->source.add_to(cmd, DataSourceFlags::Use::kTrain, data);
  cmd->add_flag("--soft-targets", f->soft_targets, "FER+ vote distributions as soft targets")->group(data);
  cmd->add_option("--train-split", f->train_split, "Training | PublicTest | PrivateTest | all")->group(data);
  cmd->add_option("--val-split", f->val_split, "Validation split (checkpoint choice)")->group(data);
  cmd->add_option("--val-fraction", f->val_fraction, "Seeded random validation fraction instead of a split")->group(data);
  cmd->add_option("--folds", f->folds, "Subject-independent folds (CK+); with --fold")->group(data);
  cmd->add_option("--fold", f->fold, "Which fold validates")->group(data);
  cmd->add_option("--max-train-samples", f->max_train_samples, "Seeded subset of the training samples")->group(data);
  cmd->add_flag("--expand-15x", f->expand_15x,
                "Train on the paper's offline 15x expansion of the training samples (each image, its mirror "
                "and a 1.1x zoom, at -10, -5, 0, +5, +10 degrees)")->group(data);
  auto* model = "Model";
  cmd->add_option("--variant", f->variant, "vgg16 | m | mca | msa | mcsa")->group(model)->capture_default_str();
  cmd->add_option("--width", f->width, "Width multiplier")->group(model)->capture_default_str();
  cmd->add_option("--input", f->input, "Input side")->group(model)->capture_default_str();
  cmd->add_option("--multiscale", f->multiscale, "auto | on | off")->group(model);
  cmd->add_option("--reduction", f->reduction, "SE reduction r")->group(model);
  cmd->add_option("--dropout", f->dropout, "Dropout before FC-7")->group(model);
  cmd->add_option("--init-from", f->init_from, "Model file to fine-tune from")->group(model);
  auto* loss = "Loss";
  cmd->add_option("--lambda-c", f->lambda_c, "Center-loss weight")->group(loss);
  cmd->add_option("--gamma", f->gamma, "Separation-loss weight")->group(loss);
  cmd->add_option("--separation", f->form, "island | dda")->group(loss);
  cmd->add_option("--label-smoothing", f->label_smoothing, "Label smoothing")->group(loss);
  cmd->add_option("--center-alpha", f->center_alpha, "Center update rate")->group(loss);
  auto* optim = "Optimisation";
  cmd->add_option("--optimizer", f->optimizer, "sgd | adamw")->group(optim);
  cmd->add_option("--lr", f->lr, "Initial learning rate")->group(optim);
  cmd->add_option("--momentum", f->momentum, "SGD momentum")->group(optim);
  cmd->add_option("--weight-decay", f->weight_decay, "Weight decay")->group(optim);
  cmd->add_option("--schedule", f->schedule, "exp | cosine | step")->group(optim);
  cmd->add_option("--lr-decay", f->lr_decay, "exp: factor per epoch")->group(optim);
  cmd->add_option("--step-every", f->step_every, "step: epochs per step")->group(optim);
  cmd->add_option("--step-gamma", f->step_gamma, "step: factor")->group(optim);
  cmd->add_option("--warmup", f->warmup, "Warm-up epochs")->group(optim);
  cmd->add_option("--batch", f->batch, "Batch size")->group(optim);
  cmd->add_option("--epochs", f->epochs, "Epochs")->group(optim);
  cmd->add_option("--minutes", f->minutes, "Stop after the epoch that passes this many minutes")->group(optim);
  cmd->add_flag("--no-augment", f->no_augment, "Train without augmentation")->group(optim);
  cmd->add_option("--erase", f->erase, "Random-erasing probability")->group(optim);
  cmd->add_option("--rotation", f->rotation, "Max rotation in degrees")->group(optim);
  cmd->add_option("--seed", f->seed, "Seed: one seed, one run")->group(optim);
  cmd->add_option("--device", f->device, "auto | cpu | cuda | cuda:N (auto: cuda when available)")
      ->group(optim)->capture_default_str();
  cmd->add_option("--log-every", f->log_every, "Print a progress line every N batches (0: one redrawn line)")
      ->check(CLI::NonNegativeNumber);
}

// The run configuration: the config file (if any), then every flag the user gave.
TrainConfig resolve_config(const TrainFlags& f, CLI::App* cmd, const GlobalOptions& global) {
  TrainConfig c;
  c.model.width = 0.25;  // a CPU-sized default; --width 1 is the paper's
  if (!f.config_file.empty()) {
    std::ifstream in(f.config_file);
    if (!in) throw std::invalid_argument("cannot read config file " + f.config_file);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
      throw std::invalid_argument(f.config_file + ": " + e.what());
    }
    c = train_config_from_json(j);
  }
  apply_flags(f, cmd, c);
  if (c.threads == 0) c.threads = global.threads;
  return c;
}

}  // namespace

void add_train_command(CLI::App& app, const GlobalOptions& global, const std::string& command_line) {
  auto f = std::make_shared<TrainFlags>();
  auto* cmd = app.add_subcommand("train", "Train a network of the MCSA-VGGNet family (checkpoints, resume, curves)");
  cmd->add_option("--resume", f->resume, "Continue the run in this folder from its last checkpoint");
  register_train_flags(cmd, *f);
  cmd->callback([f, cmd, &global, command_line] {
    auto line = std::make_shared<ProgressLine>();
    TrainResult result;
    std::string run_dir;
    if (!f->resume.empty()) {
      run_dir = f->resume;
      std::ifstream in(run_dir + "/config.json");
      const int epochs = in ? nlohmann::json::parse(in).value("epochs", 0) : 0;
      const std::string device = cmd->count("--device") ? f->device : "";
      std::cerr << "resuming " << run_dir << (device.empty() ? "" : " on " + device) << "\n";
      result = resume_training(run_dir, console_callbacks(line, epochs, f->log_every), device);
    } else {
      auto c = resolve_config(*f, cmd, global);
      if (c.run_dir.empty()) throw std::invalid_argument("train: give --out RUN_DIR (or --resume RUN_DIR)");
      run_dir = c.run_dir;
      const auto device = resolve_device(c.device);  // an unavailable device fails before any work
      std::cerr << fmt::format("training {} width {} input {} on {}{} -> {} ({})\n", to_string(c.model.variant),
                               c.model.width, c.model.input_size, c.data, c.expand_15x ? " (15x expansion)" : "",
                               c.run_dir, device.str());
      result = train(c, command_line, console_callbacks(line, c.epochs, f->log_every));
    }
    line->finish();
    nlohmann::json summary = {{"run_dir", run_dir}, {"best_epoch", result.best_epoch + 1},
                              {"best_val_accuracy", result.best_val_accuracy}, {"epochs_run", result.epochs.size()},
                              {"stopped_by_budget", result.stopped_early}};
    std::cout << summary.dump() << "\n";
  });
}

}  // namespace fervid::cli

namespace fervid::cli {

void add_cv_command(CLI::App& app, const GlobalOptions& global, const std::string& command_line) {
  auto f = std::make_shared<TrainFlags>();
  auto protocol = std::make_shared<std::string>("both");
  auto* cmd = app.add_subcommand("cv", "CK+ protocols: subject-independent k-fold cross-validation and the paper's random 9:1 split");
  register_train_flags(cmd, *f);
  cmd->add_option("--protocol", *protocol, "subject | random | both")->check(CLI::IsMember({"subject", "random", "both"}))->capture_default_str();
  cmd->callback([f, cmd, protocol, &global, command_line] {
    auto c = resolve_config(*f, cmd, global);
    if (c.run_dir.empty()) throw std::invalid_argument("cv: give --out DIR");
    resolve_device(c.device);  // an unavailable device fails before any work
    const int folds = c.folds > 0 ? c.folds : 10;
    auto line = std::make_shared<ProgressLine>();
    nlohmann::json report = {{"data", c.data}, {"command", command_line}, {"train_config", to_json(c)}};
    std::filesystem::create_directories(c.run_dir);
    if (*protocol != "random") {
      const auto r = subject_cross_validation(c, folds, c.run_dir, command_line, console_callbacks(line, c.epochs, f->log_every));
      report["subject_cv"] = to_json(r);
      std::cout << fmt::format("subject-independent {}-fold: {:.2f}% +/- {:.2f}%\n", folds, 100 * r.mean, 100 * r.std);
    }
    if (*protocol != "subject") {
      const auto r = random_split_protocol(c, c.run_dir, command_line, console_callbacks(line, c.epochs, f->log_every));
      report["random_split"] = to_json(r);
      std::cout << fmt::format("random 9:1 split: {:.2f}%\n", 100 * r.mean);
    }
    write_file_atomically(c.run_dir + "/cv.json", report.dump(2) + "\n");
    std::cout << "wrote " << c.run_dir << "/cv.json\n";
  });
}

}  // namespace fervid::cli

namespace fervid::cli {

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
  auto f = std::make_shared<TrainFlags>();
  auto a = std::make_shared<AblateFlags>();
  auto* cmd = app.add_subcommand("ablate",
                                 "The paper's comparison: five variants and the loss settings, same seed and budget; "
                                 "Markdown, JSON and a bar chart");
  register_train_flags(cmd, *f);
  auto* abl = "Ablation";
  cmd->add_option("--test-split", a->test_split, "Split the arms are scored on (with Usage splits)")->group(abl)->capture_default_str();
  cmd->add_option("--arms", a->arms, "Comma-separated arm names to run (default: all)")->group(abl);
  cmd->add_option("--center-weight", a->center, "lambda_c of the center-loss arms")->group(abl)->capture_default_str();
  cmd->add_option("--island-gammas", a->island, "gamma values of the island-form arms")->group(abl)->capture_default_str();
  cmd->add_option("--dda-gammas", a->dda, "gamma values of the dda-form arms")->group(abl)->capture_default_str();
  cmd->callback([f, a, cmd, &global, command_line] {
    auto c = resolve_config(*f, cmd, global);
    if (c.run_dir.empty()) throw std::invalid_argument("ablate: give --out DIR");
    if (!cmd->count("--epochs") && !cmd->count("--minutes") && !f->config_file.size())
      throw std::invalid_argument("ablate: state the budget of every arm with --epochs N or --minutes M");
    AblationOptions o;
    o.base = c;
    o.folds = c.folds;
    o.test_split = a->test_split;
    o.base.folds = 0;
    auto arms = default_ablation_arms(c.loss, a->center, parse_numbers(a->island, "--island-gammas"),
                                      parse_numbers(a->dda, "--dda-gammas"));
    if (!a->arms.empty()) {
      std::vector<AblationArm> chosen;
      std::stringstream ss(a->arms);
      std::string name;
      while (std::getline(ss, name, ',')) {
        auto it = std::find_if(arms.begin(), arms.end(), [&](const AblationArm& x) { return x.name == name; });
        if (it == arms.end()) {
          std::string known;
          for (const auto& x : arms) known += (known.empty() ? "" : ", ") + x.name;
          throw std::invalid_argument("ablate: unknown arm '" + name + "' (known: " + known + ")");
        }
        chosen.push_back(*it);
      }
      arms = chosen;
    }
    const std::string budget =
        fmt::format("Budget per arm{}: {}{}. Data {}; width {}, input {}, batch {}, {} lr {} ({} schedule), seed {}, "
                    "label smoothing {}, augmentation {}. Protocol: {}.",
                    o.folds > 0 ? " and fold" : "",
                    c.minutes > 0 ? fmt::format("{} minutes (stops after the epoch that passes it), at most ", c.minutes) : "",
                    fmt::format("{} epochs", c.epochs), c.data, c.model.width, c.model.input_size,
                    c.batch_size, c.optimizer, c.lr, c.schedule, c.seed, c.loss.label_smoothing,
                    c.augment.enabled() ? "on" : "off",
                    o.folds > 0 ? fmt::format("subject-independent {}-fold cross-validation, last-epoch model of each fold "
                                              "scored on its held-out subjects, predictions pooled", o.folds)
                                : fmt::format("train on {}, best epoch chosen on {}, scored on {}", c.train_split,
                                              c.val_split, o.test_split));
    std::cerr << budget << "\n";
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
    const auto rows = run_ablation(o, arms, c.run_dir, command_line, cb);
    const auto& names = c.model.classes();
    nlohmann::json j = {{"command", command_line}, {"budget", budget}, {"train_config", to_json(c)},
                        {"protocol", o.folds > 0 ? fmt::format("subject-{}-fold", o.folds) : "split " + o.test_split},
                        {"rows", nlohmann::json::array()}};
    for (const auto& r : rows) j["rows"].push_back(to_json(r, names));
    write_file_atomically(c.run_dir + "/ablation.json", j.dump(2) + "\n");
    const auto md = ablation_markdown(rows, names, "Ablation on " + std::filesystem::path(c.data).filename().string(), budget);
    write_file_atomically(c.run_dir + "/ablation.md", md);
#ifdef FERVID_WITH_OPENCV
    std::vector<std::string> cats;
    Series acc{"accuracy", {}, 0}, f1{"macro-F1", {}, 1}, ratio{"inter/intra / 10", {}, 2};
    for (const auto& r : rows) {
      cats.push_back(r.arm.name);
      acc.y.push_back(r.metrics.accuracy);
      f1.y.push_back(r.metrics.macro_f1);
      ratio.y.push_back(r.metrics.embedding.ratio / 10);
    }
    write_bar_chart(c.run_dir + "/ablation.png", "ablation: " + std::filesystem::path(c.data).filename().string(), cats,
                    {acc, f1, ratio});
#endif
    std::cout << md;
    std::cout << "wrote " << c.run_dir << "/ablation.{md,json" <<
#ifdef FERVID_WITH_OPENCV
        ",png" <<
#endif
        "}\n";
  });
}

}  // namespace fervid::cli
