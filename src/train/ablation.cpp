#include "fervid/ablation.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "fervid/atomic_file.h"
#include "fervid/crossval.h"
#include "fervid/data_source.h"
#include "fervid/hash.h"
#include "fervid/json_text.h"
#include "fervid/model_io.h"
#include "fervid/splits.h"
#include "fervid/train_options.h"
#include "fervid/train_step.h"
#ifdef FERVID_WITH_OPENCV
#include "fervid/plot.h"
#endif

namespace fervid {

namespace fs = std::filesystem;

namespace {

std::string gamma_text(double g) { return fmt::format("{:g}", g); }

int64_t parameter_count(MCSANet& net) {
  int64_t n = 0;
  for (const auto& p : net->parameters()) n += p.numel();
  return n;
}

// The samples the arm is scored on, and the data they come from (read through the cache).
struct ScoreData {
  OpenedSource source;
  std::vector<std::vector<size_t>> folds;  // fold protocol
  std::vector<size_t> test;                // split protocol
};

ScoreData open_score_data(const AblationOptions& o) {
  ScoreData s;
  s.source = open_run_data(o.base);  // exactly as the trainer opens it, so the fold assignment is the same
  if (o.folds > 0) {
    s.folds = subject_kfold(s.source.data, o.folds, o.base.seed);  // the folds the trainer uses
  } else {
    try {
      s.test = split_indices(s.source.data, o.test_split);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(std::string("ablate: test split: ") + e.what());
    }
    if (s.test.empty()) throw std::invalid_argument("ablate: no samples in split " + o.test_split + " of " + o.base.data);
  }
  return s;
}

Predictions concat(const std::vector<Predictions>& parts) {
  std::vector<torch::Tensor> p, l, e;
  for (const auto& x : parts) {
    p.push_back(x.probs);
    l.push_back(x.labels);
    e.push_back(x.embeddings);
  }
  return {torch::cat(p), torch::cat(l), torch::cat(e)};
}

// The configuration an arm trains with; for the fold protocol fold 0's (the other folds differ
// only in fold and run folder).
TrainConfig arm_config(const AblationOptions& o, const AblationArm& arm) {
  TrainConfig c = o.base;
  c.model.variant = arm.variant;
  c.loss = arm.loss;
  if (o.folds > 0) {
    c.folds = o.folds;
    c.fold = 0;
    c.val_fraction = 0;
    c.train_split = c.val_split = "all";
  }
  return c;
}

// What an arm's result depends on: its training (trainer's run_identity) and, for the split
// protocol, the split it is scored on.
nlohmann::json arm_identity(const AblationOptions& o, const AblationArm& arm) {
  nlohmann::json id = {{"train", run_identity(arm_config(o, arm))}};
  if (o.folds == 0) id["test_split"] = o.test_split;
  return id;
}

std::string identity_hash(const nlohmann::json& identity) {
  const auto text = identity.dump();
  return sha256_hex(text.data(), text.size());
}

nlohmann::json read_json_file(const fs::path& path) {
  std::ifstream in(path);
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(path.string() + ": " + json_error_text(e));
  }
}

// The identity of an arm finished by an older build (result.json without one): from the
// configuration its training recorded. Its test split was not recorded: taken as `current`'s.
nlohmann::json recorded_identity(const fs::path& dir, const nlohmann::json& current) {
  for (const char* config : {"run/config.json", "fold-0/config.json", "config.json"}) {
    if (!fs::exists(dir / config)) continue;
    auto c = read_train_config_file((dir / config).string());
    if (c.folds > 0) c.fold = 0;
    nlohmann::json id = {{"train", run_identity(c)}};
    if (current.contains("test_split")) id["test_split"] = current.at("test_split");
    return id;
  }
  return nullptr;
}

// A finished arm folder is reused only for the same training scored the same way; otherwise the
// table would mix settings or budgets without saying so. Refused rather than retrained: the
// folder may hold hours of training, and the user decides whether to discard it.
void require_same_arm(const AblationArm& arm, const fs::path& dir, const nlohmann::json& stored,
                      const nlohmann::json& identity) {
  if (stored.value("identity_sha256", "") == identity_hash(identity)) return;
  auto recorded = stored.contains("identity") ? stored.at("identity") : recorded_identity(dir, identity);
  // Read back through the option table, so that an option added since takes its default.
  if (recorded.contains("train")) recorded["train"] = run_identity(train_config_from_json(recorded.at("train")));
  if (recorded.is_null()) {
    throw std::runtime_error("ablate: arm '" + arm.name + "' in " + dir.string() +
                             " records no configuration, so it cannot be reused; remove the folder to train it again");
  }
  const auto difference = first_json_difference(recorded, identity);
  if (difference.empty()) return;
  throw std::runtime_error("ablate: arm '" + arm.name + "' in " + dir.string() +
                           " was trained with another configuration: " + difference +
                           " (recorded vs this ablation's); remove the folder to train it again, or choose another --out");
}

AblationRow run_arm(const AblationOptions& o, const AblationArm& arm, const ScoreData& data, const std::string& dir,
                    const std::string& command_line, const TrainCallbacks& cb) {
  AblationRow row;
  row.arm = arm;
  TrainConfig c = arm_config(o, arm);
  const auto device = resolve_device(c.device);  // where the arm's model is scored, as it trained
  const auto t0 = std::chrono::steady_clock::now();
  if (o.folds > 0) {
    std::vector<Predictions> parts;
    for (int f = 0; f < o.folds; ++f) {
      c.fold = f;
      c.run_dir = (fs::path(dir) / ("fold-" + std::to_string(f))).string();
      const auto r = train(c, command_line, cb);
      row.epochs = static_cast<int>(r.epochs.size());
      auto model = load_model(c.run_dir + "/last.fervid");  // last epoch: no choice on test data
      model.net->to(device);
      if (f == 0) row.parameters = parameter_count(model.net);
      parts.push_back(predict(model.net, data.source.data, data.folds[static_cast<size_t>(f)]));
      const auto& last = parts.back();
      const double acc = last.probs.argmax(1).eq(last.labels).to(torch::kFloat64).mean().item<double>();
      row.fold_accuracies.push_back(acc);
    }
    row.fold_std = mean_and_std(row.fold_accuracies).second;
    row.metrics = compute_metrics(concat(parts), c.model.num_classes());
  } else {
    c.run_dir = (fs::path(dir) / "run").string();
    const auto r = train(c, command_line, cb);
    row.epochs = static_cast<int>(r.epochs.size());
    row.val_accuracy = r.best_val_accuracy;
    auto model = load_model(c.run_dir + "/best.fervid");  // chosen on the validation split
    model.net->to(device);
    row.parameters = parameter_count(model.net);
    row.metrics = compute_metrics(predict(model.net, data.source.data, data.test), c.model.num_classes());
  }
  row.train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return row;
}

double recall_of(const AblationRow& r, const std::vector<std::string>& names, const std::string& cls) {
  for (size_t k = 0; k < names.size() && k < r.metrics.per_class.size(); ++k)
    if (names[k] == cls) return r.metrics.per_class[k].recall;
  return std::nan("");
}

std::string pct(double v) { return std::isnan(v) ? "n/a" : fmt::format("{:.2f}", 100 * v); }

}  // namespace

std::vector<AblationArm> default_ablation_arms(const LossConfig& base, double lambda_c,
                                               const std::vector<double>& island_gammas,
                                               const std::vector<double>& dda_gammas) {
  std::vector<AblationArm> arms;
  LossConfig ce = base;
  ce.lambda_c = 0;
  ce.gamma = 0;
  for (Variant v : {Variant::kVgg16, Variant::kM, Variant::kMca, Variant::kMsa, Variant::kMcsa})
    arms.push_back({std::string(to_string(v)), "variant", v, ce});
  arms.push_back({"ce", "loss", Variant::kMcsa, ce});
  LossConfig center = ce;
  center.lambda_c = lambda_c;
  arms.push_back({"ce+center", "loss", Variant::kMcsa, center});
  auto add = [&](SeparationForm form, const std::vector<double>& gammas) {
    for (double g : gammas) {
      LossConfig l = center;
      l.form = form;
      l.gamma = g;
      arms.push_back({fmt::format("ce+center+{}-{}", to_string(form), gamma_text(g)), "loss", Variant::kMcsa, l});
    }
  };
  add(SeparationForm::kIsland, island_gammas);
  add(SeparationForm::kDda, dda_gammas);
  return arms;
}

std::vector<AblationArm> select_ablation_arms(const std::vector<AblationArm>& arms, const std::string& names) {
  if (names.empty()) return arms;
  std::vector<AblationArm> chosen;
  std::stringstream ss(names);
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
  return chosen;
}

std::string ablation_budget(const AblationOptions& o) {
  const auto& c = o.base;
  return fmt::format(
      "Budget per arm{}: {}{}. Data {}; width {}, input {}, batch {}, {} lr {} ({} schedule), seed {}, "
      "label smoothing {}, augmentation {}. Protocol: {}.",
      o.folds > 0 ? " and fold" : "",
      c.minutes > 0 ? fmt::format("{} minutes (stops after the epoch that passes it), at most ", c.minutes) : "",
      fmt::format("{} epochs", c.epochs), c.data, c.model.width, c.model.input_size, c.batch_size, c.optimizer, c.lr,
      c.schedule, c.seed, c.loss.label_smoothing, c.augment.enabled() ? "on" : "off",
      o.folds > 0 ? fmt::format("subject-independent {}-fold cross-validation, last-epoch model of each fold "
                                "scored on its held-out subjects, predictions pooled",
                                o.folds)
                  : fmt::format("train on {}, best epoch chosen on {}, scored on {}", c.train_split, c.val_split,
                                o.test_split));
}

AblationReport run_ablation(const AblationOptions& options, const std::vector<AblationArm>& arms,
                            const std::string& out_dir, const std::string& command_line,
                            const AblationCallbacks& callbacks) {
  if (arms.empty()) throw std::invalid_argument("ablate: no arms to run");
  resolve_device(options.base.device);  // an unavailable device fails before any work
  fs::create_directories(out_dir);
  const auto data = open_score_data(options);
  const auto& names = options.base.model.classes();
  AblationReport report;
  auto& rows = report.rows;
  std::vector<std::string> hashes;  // of rows' identities
  for (size_t i = 0; i < arms.size(); ++i) {
    const auto& arm = arms[i];
    if (callbacks.arm_start) callbacks.arm_start(arm, static_cast<int>(i), static_cast<int>(arms.size()));
    const fs::path dir = fs::path(out_dir) / arm.name;
    const fs::path result = dir / "result.json";
    const auto identity = arm_identity(options, arm);
    const auto hash = identity_hash(identity);
    AblationRow row;
    // Arms that give identical trainings (the variant "mcsa" and the loss "ce") run once.
    const auto twin = std::find(hashes.begin(), hashes.end(), hash);
    if (twin != hashes.end()) {
      row = rows[static_cast<size_t>(twin - hashes.begin())];
      row.same_run_as = row.arm.name;
      row.arm = arm;
    } else if (fs::exists(result)) {
      const auto stored = read_json_file(result);
      row = ablation_row_from_json(stored);
      if (row.arm.name != arm.name) throw std::runtime_error(result.string() + ": holds arm '" + row.arm.name + "'");
      require_same_arm(arm, dir, stored, identity);
      row.arm = arm;
    } else {
      fs::remove_all(dir);  // an arm interrupted before its result: start it again
      fs::create_directories(dir);
      row = run_arm(options, arm, data, dir.string(), command_line, callbacks.train);
      auto j = to_json(row, names);
      j["identity"] = identity;
      j["identity_sha256"] = hash;
      write_file_atomically(result.string(), dump_json(j, 2) + "\n");
    }
    rows.push_back(row);
    hashes.push_back(hash);
    if (callbacks.arm_done) callbacks.arm_done(rows.back());
  }

  // The reports: JSON, the paper's tables in Markdown, and a bar chart.
  report.budget = ablation_budget(options);
  const std::string data_name = fs::path(options.base.data).filename().string();
  report.markdown = ablation_markdown(rows, names, "Ablation on " + data_name, report.budget);
  auto recorded = options.base;
  recorded.folds = options.folds;
  nlohmann::json j = {{"command", command_line},
                      {"budget", report.budget},
                      {"train_config", to_json(recorded)},
                      {"protocol", options.folds > 0 ? fmt::format("subject-{}-fold", options.folds)
                                                     : "split " + options.test_split},
                      {"rows", nlohmann::json::array()}};
  for (const auto& r : rows) j["rows"].push_back(to_json(r, names));
  const fs::path out(out_dir);
  write_file_atomically((out / "ablation.json").string(), dump_json(j, 2) + "\n");
  write_file_atomically((out / "ablation.md").string(), report.markdown);
  report.files = {(out / "ablation.json").string(), (out / "ablation.md").string()};
#ifdef FERVID_WITH_OPENCV
  std::vector<std::string> categories;
  Series acc{"accuracy", {}, 0}, f1{"macro-F1", {}, 1}, ratio{"inter/intra / 10", {}, 2};
  for (const auto& r : rows) {
    categories.push_back(r.arm.name);
    acc.y.push_back(r.metrics.accuracy);
    f1.y.push_back(r.metrics.macro_f1);
    ratio.y.push_back(r.metrics.embedding.ratio / 10);
  }
  write_bar_chart((out / "ablation.png").string(), "ablation: " + data_name, categories, {acc, f1, ratio});
  report.files.push_back((out / "ablation.png").string());
#endif
  return report;
}

nlohmann::json to_json(const AblationRow& r, const std::vector<std::string>& names) {
  return {{"arm", r.arm.name},
          {"group", r.arm.group},
          {"same_run_as", r.same_run_as},
          {"variant", to_string(r.arm.variant)},
          {"loss", {{"label_smoothing", r.arm.loss.label_smoothing}, {"lambda_c", r.arm.loss.lambda_c},
                    {"center_alpha", r.arm.loss.center_alpha}, {"gamma", r.arm.loss.gamma},
                    {"form", to_string(r.arm.loss.form)}}},
          {"accuracy", r.metrics.accuracy},
          {"fold_accuracies", r.fold_accuracies},
          {"fold_std", r.fold_std},
          {"val_accuracy", r.val_accuracy},
          {"epochs", r.epochs},
          {"train_seconds", r.train_seconds},
          {"parameters", r.parameters},
          {"metrics", to_json(r.metrics, names)}};
}

AblationRow ablation_row_from_json(const nlohmann::json& j) {
  AblationRow r;
  try {
    r.arm.name = j.at("arm").get<std::string>();
    r.arm.group = j.at("group").get<std::string>();
    r.same_run_as = j.value("same_run_as", "");
    r.arm.variant = parse_variant(j.at("variant").get<std::string>());
    const auto& l = j.at("loss");
    r.arm.loss.label_smoothing = l.at("label_smoothing").get<double>();
    r.arm.loss.lambda_c = l.at("lambda_c").get<double>();
    r.arm.loss.center_alpha = l.at("center_alpha").get<double>();
    r.arm.loss.gamma = l.at("gamma").get<double>();
    r.arm.loss.form = parse_separation_form(l.at("form").get<std::string>());
    r.fold_accuracies = j.at("fold_accuracies").get<std::vector<double>>();
    r.fold_std = j.at("fold_std").get<double>();
    r.val_accuracy = j.at("val_accuracy").get<double>();
    r.epochs = j.at("epochs").get<int>();
    r.train_seconds = j.at("train_seconds").get<double>();
    r.parameters = j.at("parameters").get<int64_t>();
    r.metrics = eval_metrics_from_json(j.at("metrics"));
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(std::string("ablation result: ") + json_error_text(e));
  }
  return r;
}

std::string ablation_markdown(const std::vector<AblationRow>& rows, const std::vector<std::string>& names,
                              const std::string& title, const std::string& budget) {
  std::string md = "# " + title + "\n\n" + budget + "\n\n";
  const bool folds = !rows.empty() && !rows.front().fold_accuracies.empty();
  auto table = [&](const std::string& group, const std::string& heading) {
    md += "## " + heading + "\n\n";
    md += folds ? "| arm | params | accuracy % (mean +/- std over folds) |" : "| arm | params | accuracy % | val % |";
    md += " angry % | happy % | sad % | UAR % | macro-F1 | intra | inter (mean) | inter (min) | inter/intra | epochs | minutes |\n";
    md += folds ? "|---|---:|---:|" : "|---|---:|---:|---:|";
    md += "---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
    for (const auto& r : rows) {
      if (r.arm.group != group) continue;
      const auto& e = r.metrics.embedding;
      std::string acc = pct(r.metrics.accuracy);
      if (folds) {
        const auto [mean, sd] = mean_and_std(r.fold_accuracies);
        acc = fmt::format("{:.2f} +/- {:.2f}", 100 * mean, 100 * sd);
      }
      md += fmt::format("| {} | {} | {} |{} {} | {} | {} | {} | {:.4f} | {:.3f} | {:.3f} | {:.3f} | {:.3f} | {} | {:.1f} |\n",
                        r.same_run_as.empty() ? r.arm.name : r.arm.name + " (= " + r.same_run_as + ")", r.parameters, acc, folds ? "" : " " + pct(r.val_accuracy) + " |",
                        pct(recall_of(r, names, "angry")), pct(recall_of(r, names, "happy")),
                        pct(recall_of(r, names, "sad")), pct(r.metrics.uar), r.metrics.macro_f1, e.intra_mean, e.inter_mean, e.inter_min,
                        e.ratio, r.epochs, r.train_seconds / 60);
    }
    md += "\n";
  };
  table("variant", "Network variants (cross-entropy)");
  table("loss", "Loss settings (mcsa)");
  md += "Per-class figures are recall (the paper's per-class accuracy). Embedding distances are "
        "Euclidean, on the scored samples: intra = mean distance of an embedding to its class "
        "centre; inter = distances between class centres.\n";
  return md;
}

}  // namespace fervid
