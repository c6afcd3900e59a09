// fervid eval: accuracy, per-class P/R/F1, macro-F1, confusion matrix, ECE, embedding distances,
// with PNGs (confusion heatmap, reliability diagram, 2-D embedding projection) beside the JSON.
#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <iostream>
#include <memory>

#include "commands.h"
#include "fervid/atomic_file.h"
#include "fervid/data_source.h"
#include "fervid/evaluate.h"
#include "fervid/hash.h"
#include "fervid/labels.h"
#include "fervid/model_io.h"
#include "fervid/splits.h"
#include "fervid/train_step.h"
#include "fervid/trained_data.h"
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
  double temperature = 0;
  bool json = false, whole_image = false;
  RecipeFlags recipe;
};

// An image the detector found no face in, per class (its class folder), for the end-to-end
// figures: such an image is a wrong answer to a user, not a sample to leave out.
std::vector<int64_t> missed_per_class(const ReadReport& report, int num_classes) {
  std::vector<int64_t> missed(static_cast<size_t>(num_classes), 0);
  for (const auto& issue : report.issues) {
    if (issue.field != "face") continue;
    const auto k = expression_index(std::filesystem::path(issue.where).parent_path().filename().string());
    if (k && *k < num_classes) ++missed[static_cast<size_t>(*k)];
  }
  return missed;
}

}  // namespace

void add_eval_command(CLI::App& app, const GlobalOptions& /*global*/) {
  auto o = std::make_shared<EvalOptions>();
  auto* cmd = app.add_subcommand("eval", "Evaluate a model on a dataset split: metrics, confusion matrix, calibration, embeddings");
  cmd->add_option("--model", o->model, "Model file (.fervid)")->required();
  cmd->add_option("--data", o->data, "FER2013 CSV, image folder, CK+48, CK+ or photo folder")->required();
  cmd->add_option("--format", o->format, "auto | fer2013 | folder | ckplus48 | ckplus | photos (default: as the model was trained, "
                                         "when the data is of the training data's format)")
      ->check(CLI::IsMember({"auto", "fer2013", "folder", "ckplus48", "ckplus", "photos"}));
  cmd->add_flag("--whole-image", o->whole_image,
                "A folder of face crops: each whole image is the face, no detection (--format folder)");
  cmd->add_option("--ferplus", o->ferplus,
                  "FER+ votes: evaluate against FER+ labels; 'none': FER2013's own labels (default: the model's training labels)");
  cmd->add_option("--split", o->split, "Training | PublicTest | PrivateTest | all (default: PrivateTest; all when the data has no splits)");
  cmd->add_option("--folds", o->folds, "Subject-independent folds (with --fold): evaluate one fold (default: a fold model's own)");
  cmd->add_option("--fold", o->fold, "The fold to evaluate (default: a fold model's own held-out fold)");
  cmd->add_option("--seed", o->seed, "Seed of the fold assignment (default: the model's training seed)");
  cmd->add_option("--tta", o->tta, "none | flip | tencrop")->check(CLI::IsMember({"none", "flip", "tencrop"}))->capture_default_str();
  cmd->add_option("--temperature", o->temperature,
                  "Softmax temperature (default: the model file's calibration; 1: uncalibrated)")
      ->check(CLI::Range(kMinTemperature, kMaxTemperature));
  cmd->add_option("--out", o->out, "Folder for report.json and the PNGs (default: eval-<split>-<tta>)");
  cmd->add_flag("--json", o->json, "Print the JSON report instead of a summary");
  cmd->add_option("--device", o->device, "auto | cpu | cuda | cuda:N (auto: cuda when available)")->capture_default_str();
  o->recipe.add_to(cmd, "Faces (--format photos or ckplus: faces are detected and cropped)",
                   [](const RecipeOption&) { return std::string("the model's recipe"); });
  cmd->callback([o, cmd] {
    const auto device = resolve_device(o->device);  // an unavailable device fails before any work
    auto model = load_model(o->model);
    model.net->to(device);
    const auto& cfg = model.net->config();
    if (o->whole_image && cmd->count("--format") && o->format != "folder") {
      throw std::invalid_argument("eval: --whole-image reads a folder of crops (--format folder), not --format " + o->format);
    }
    // The data the way the model was trained (its recorded source options and seed), when the
    // data given is of the training data's format; then the flags given.
    const auto trained = trained_data(model.metadata, o->data);
    DataSourceOptions so = trained.same_format ? trained.config.source : DataSourceOptions{};
    so.soft_targets = false;
    if (so.ferplus_mix > 0) {  // trained on FER2013's labels mixed with FER+ votes: scored on FER2013's
      so.ferplus.clear();
      so.ferplus_mix = 0;
    }
    if (cmd->count("--format") || o->whole_image) so.format = parse_source_format(o->whole_image ? "folder" : o->format);
    if (cmd->count("--ferplus")) so.ferplus = o->ferplus == "none" ? "" : o->ferplus;
    so.size = cfg.input_size;
    // Photos and CK+ are cropped with the model's recipe, then the flags given; other formats
    // hold cropped faces (a recipe flag is then an error naming it).
    so.face = o->recipe.given();
    const bool cropped_here = detects_faces(resolve_source_format(o->data, so.format));
    if (cropped_here) {
      so.face = FaceRecipeOverrides::all_of(so.face.apply(model.face_recipe));
    }
    // Sources that detect faces are read afresh, so that the images without a face are counted.
    so.use_cache = !cropped_here;
    const auto src = open_data_source(o->data, so);
    const bool fold_model = trained.same_format && trained.config.folds > 0 && !cmd->count("--split");
    const int folds = cmd->count("--folds") ? o->folds : fold_model ? trained.config.folds : 0;
    const int fold = cmd->count("--fold") ? o->fold : fold_model ? trained.config.fold : 0;
    const uint64_t seed = cmd->count("--seed") ? o->seed : trained.known ? trained.config.seed : o->seed;
    std::vector<size_t> idx;
    std::string protocol;
    if (folds > 0) {
      if (fold < 0 || fold >= folds) throw std::invalid_argument(fmt::format("eval: --fold {} is not in [0, {})", fold, folds));
      idx = subject_kfold(src.data, folds, seed).at(static_cast<size_t>(fold));
      protocol = fmt::format("subject-independent fold {} of {} (seed {})", fold, folds, seed);
    } else {
      // A folder without splits (face crops, photos): every sample, unless a split was asked for.
      if (!cmd->count("--split") && src.data.indices(Split::kPrivateTest).empty()) o->split = "all";
      idx = split_indices(src.data, o->split);
      protocol = o->split == "all" ? "all samples" : "split " + o->split;
    }
    if (idx.empty()) throw std::invalid_argument("no samples in " + protocol + " of " + o->data);
    const auto tta = parse_tta(o->tta);
    const double temperature = cmd->count("--temperature") ? o->temperature : model.calibration.temperature;
    const auto preds = predict(model.net, src.data, idx, tta, 256, temperature);
    const auto metrics = compute_metrics(preds, cfg.num_classes());
    const std::string out = o->out.empty() ? fmt::format("eval-{}-{}", folds > 0 ? "fold" + std::to_string(fold) : o->split, o->tta) : o->out;
    std::filesystem::create_directories(out);
    std::error_code ec;
    const bool data_is_file = std::filesystem::is_regular_file(o->data, ec);
    nlohmann::json report = {
        {"model", o->model}, {"model_sha256", sha256_file(o->model)}, {"model_config", config_to_json(cfg)},
        {"model_seed", model.metadata.value("seed", nlohmann::json())}, {"data", o->data},
        {"data_sha256", data_is_file ? nlohmann::json(sha256_file(o->data)) : nlohmann::json()},
        {"data_key", src.cache_key}, {"data_source", to_json(so)}, {"as_trained", trained.same_format},
        {"ferplus", so.ferplus}, {"protocol", protocol},
        {"tta", to_string(tta)}, {"single_crop", tta == Tta::kNone}, {"device", device.str()},
        {"temperature", temperature}, {"model_calibration", model.calibration.to_json()},
        {"model_face_recipe", to_json(model.face_recipe)},
        {"face_recipe", cropped_here ? to_json(source_face_recipe(so)) : nlohmann::json()},
        {"metrics", to_json(metrics, cfg.classes())}};
    std::string end_to_end_line;
    if (cropped_here && folds == 0 && o->split == "all") {
      // End to end: every image of the folder, an image without a face counted as wrong.
      const auto missed = missed_per_class(src.report, cfg.num_classes());
      int64_t images = 0, correct = 0, no_face = 0;
      double recall_sum = 0;
      int present = 0;
      for (size_t k = 0; k < missed.size(); ++k) {
        const auto& c = metrics.per_class[k];
        const auto hits = static_cast<int64_t>(std::llround(c.recall * static_cast<double>(c.support)));
        const int64_t n = c.support + missed[k];
        images += n;
        correct += hits;
        no_face += missed[k];
        if (n > 0) {
          recall_sum += static_cast<double>(hits) / static_cast<double>(n);
          ++present;
        }
      }
      nlohmann::json e2e = {{"images", images}, {"faces_found", metrics.samples}, {"no_face", no_face},
                            {"no_face_per_class", missed},
                            {"accuracy", images > 0 ? static_cast<double>(correct) / static_cast<double>(images) : 0.0},
                            {"uar", present > 0 ? recall_sum / present : 0.0},
                            {"rule", "an image without a face found counts as a wrong answer of its class"}};
      report["end_to_end"] = e2e;
      end_to_end_line = fmt::format("end to end (an image without a face is wrong): {} images, {} without a face, "
                                    "accuracy {:.2f}%  UAR {:.2f}%\n",
                                    images, no_face, 100 * e2e["accuracy"].get<double>(), 100 * e2e["uar"].get<double>());
    }
    write_file_atomically(out + "/report.json", report.dump(2) + "\n");
#ifdef FERVID_WITH_OPENCV
    const std::string title = fmt::format("{} {} tta={}", std::filesystem::path(o->model).filename().string(), protocol, o->tta);
    write_confusion_png(out + "/confusion.png", metrics.confusion, cfg.classes(), title);
    write_reliability_png(out + "/reliability.png", metrics, fmt::format("reliability, temperature {:.3g}", temperature));
    write_scatter_png(out + "/embedding.png", project_2d(preds.embeddings), preds.labels, cfg.classes(),
                      "embedding, first two principal components");
#endif
    if (o->json) {
      std::cout << report.dump(2) << "\n";
      return;
    }
    std::cout << fmt::format("{} on {} ({}), tta {}, temperature {:.4g}: {} samples\n", o->model, o->data, protocol, o->tta,
                             temperature, metrics.samples);
    std::cout << fmt::format("accuracy {:.2f}%  UAR {:.2f}%  macro-F1 {:.4f}  ECE {:.4f}\n", 100 * metrics.accuracy,
                             100 * metrics.uar, metrics.macro_f1, metrics.ece);
    std::cout << end_to_end_line;
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
