// fervid eval: accuracy, per-class P/R/F1, macro-F1, confusion matrix, ECE, embedding distances,
// with PNGs (confusion heatmap, reliability diagram, 2-D embedding projection) beside the JSON.
#include <fmt/format.h>

#include <filesystem>
#include <iostream>
#include <memory>

#include "commands.h"
#include "fervid/atomic_file.h"
#include "fervid/data_source.h"
#include "fervid/evaluate.h"
#include "fervid/hash.h"
#include "fervid/model_io.h"
#include "fervid/splits.h"
#include "fervid/train_step.h"
#include "recipe_flags.h"
#ifdef FERVID_WITH_OPENCV
#include "fervid/plot.h"
#endif

namespace fervid::cli {

namespace {

struct EvalOptions {
  std::string model, data, format = "auto", ferplus, split = "PrivateTest", tta = "none", out, device = "auto";
  int folds = 0, fold = 0;
  uint64_t seed = 1;
  bool json = false;
  RecipeFlags recipe;
};

}  // namespace

void add_eval_command(CLI::App& app, const GlobalOptions& /*global*/) {
  auto o = std::make_shared<EvalOptions>();
  auto* cmd = app.add_subcommand("eval", "Evaluate a model on a dataset split: metrics, confusion matrix, calibration, embeddings");
  cmd->add_option("--model", o->model, "Model file (.fervid)")->required();
  cmd->add_option("--data", o->data, "FER2013 CSV, image folder, CK+48, CK+")->required();
  cmd->add_option("--format", o->format, "auto | fer2013 | folder | ckplus48 | ckplus | photos")->capture_default_str();
  cmd->add_option("--ferplus", o->ferplus, "FER+ votes: evaluate against FER+ labels");
  cmd->add_option("--split", o->split, "Training | PublicTest | PrivateTest | all")->capture_default_str();
  cmd->add_option("--folds", o->folds, "Subject-independent folds (with --fold): evaluate one fold");
  cmd->add_option("--fold", o->fold, "The fold to evaluate");
  cmd->add_option("--seed", o->seed, "Seed of the fold assignment")->capture_default_str();
  cmd->add_option("--tta", o->tta, "none | flip | tencrop")->check(CLI::IsMember({"none", "flip", "tencrop"}))->capture_default_str();
  cmd->add_option("--out", o->out, "Folder for report.json and the PNGs (default: eval-<split>-<tta>)");
  cmd->add_flag("--json", o->json, "Print the JSON report instead of a summary");
  cmd->add_option("--device", o->device, "auto | cpu | cuda | cuda:N (auto: cuda when available)")->capture_default_str();
  o->recipe.add_to(cmd, "Faces (--format photos or ckplus: faces are detected and cropped)",
                   [](const RecipeOption&) { return std::string("the model's recipe"); });
  cmd->callback([o] {
    const auto device = resolve_device(o->device);  // an unavailable device fails before any work
    auto model = load_model(o->model);
    model.net->to(device);
    const auto& cfg = model.net->config();
    DataSourceOptions so;
    so.format = parse_source_format(o->format);
    so.ferplus = o->ferplus;
    so.size = cfg.input_size;
    so.use_cache = true;
    // Photos and CK+ are cropped with the model's recipe, then the flags given; other formats
    // hold cropped faces (a recipe flag is then an error naming it).
    so.face = o->recipe.given();
    const bool cropped_here = detects_faces(resolve_source_format(o->data, so.format));
    if (cropped_here) {
      so.face = FaceRecipeOverrides::all_of(so.face.apply(model.face_recipe));
    }
    const auto src = open_data_source(o->data, so);
    std::vector<size_t> idx;
    std::string protocol;
    if (o->folds > 0) {
      idx = subject_kfold(src.data, o->folds, o->seed).at(static_cast<size_t>(o->fold));
      protocol = fmt::format("subject-independent fold {} of {} (seed {})", o->fold, o->folds, o->seed);
    } else if (o->split == "all") {
      for (size_t i = 0; i < src.data.size(); ++i) idx.push_back(i);
      protocol = "all samples";
    } else {
      const auto split = parse_split(o->split);
      if (!split) throw std::invalid_argument("unknown split '" + o->split + "'");
      idx = src.data.indices(*split);
      protocol = "split " + o->split;
    }
    if (idx.empty()) throw std::invalid_argument("no samples in " + protocol + " of " + o->data);
    const auto tta = parse_tta(o->tta);
    const auto preds = predict(model.net, src.data, idx, tta);
    const auto metrics = compute_metrics(preds, cfg.num_classes());
    const std::string out = o->out.empty() ? fmt::format("eval-{}-{}", o->folds > 0 ? "fold" + std::to_string(o->fold) : o->split, o->tta) : o->out;
    std::filesystem::create_directories(out);
    std::error_code ec;
    const bool data_is_file = std::filesystem::is_regular_file(o->data, ec);
    nlohmann::json report = {
        {"model", o->model}, {"model_sha256", sha256_file(o->model)}, {"model_config", config_to_json(cfg)},
        {"model_seed", model.metadata.value("seed", nlohmann::json())}, {"data", o->data},
        {"data_sha256", data_is_file ? nlohmann::json(sha256_file(o->data)) : nlohmann::json()},
        {"data_key", src.cache_key}, {"ferplus", o->ferplus}, {"protocol", protocol},
        {"tta", to_string(tta)}, {"single_crop", tta == Tta::kNone}, {"device", device.str()},
        {"model_face_recipe", to_json(model.face_recipe)},
        {"face_recipe", cropped_here ? to_json(source_face_recipe(so)) : nlohmann::json()},
        {"metrics", to_json(metrics, cfg.classes())}};
    write_file_atomically(out + "/report.json", report.dump(2) + "\n");
#ifdef FERVID_WITH_OPENCV
    const std::string title = fmt::format("{} {} tta={}", std::filesystem::path(o->model).filename().string(), protocol, o->tta);
    write_confusion_png(out + "/confusion.png", metrics.confusion, cfg.classes(), title);
    write_reliability_png(out + "/reliability.png", metrics, "reliability");
    write_scatter_png(out + "/embedding.png", project_2d(preds.embeddings), preds.labels, cfg.classes(),
                      "embedding, first two principal components");
#endif
    if (o->json) {
      std::cout << report.dump(2) << "\n";
      return;
    }
    std::cout << fmt::format("{} on {} ({}), tta {}: {} samples\n", o->model, o->data, protocol, o->tta, metrics.samples);
    std::cout << fmt::format("accuracy {:.2f}%  UAR {:.2f}%  macro-F1 {:.4f}  ECE {:.4f}\n", 100 * metrics.accuracy,
                             100 * metrics.uar, metrics.macro_f1, metrics.ece);
    std::cout << fmt::format("{:<10} {:>9} {:>9} {:>9} {:>8}\n", "class", "precision", "recall", "F1", "support");
    for (size_t k = 0; k < metrics.per_class.size(); ++k) {
      const auto& c = metrics.per_class[k];
      std::cout << fmt::format("{:<10} {:>9.3f} {:>9.3f} {:>9.3f} {:>8}\n", cfg.classes()[k], c.precision, c.recall, c.f1, c.support);
    }
    const auto& e = metrics.embedding;
    std::cout << fmt::format("embedding: intra-class {:.3f}, inter-class centres mean {:.3f} min {:.3f}, ratio {:.3f}\n",
                             e.intra_mean, e.inter_mean, e.inter_min, e.ratio);
    std::cout << "wrote " << out << "/report.json" << "\n";
  });
}

}  // namespace fervid::cli
