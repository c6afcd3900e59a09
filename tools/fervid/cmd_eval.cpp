// fervid eval: the flags of an EvalRequest (eval_run.h: the library scores the model and writes
// report.json and the PNGs) and a summary of the EvalRun on the terminal.
#include <fmt/format.h>

#include <iostream>
#include <memory>

#include "commands.h"
#include "fervid/eval_run.h"
#include "fervid/json_text.h"
#include "fervid/model_io.h"
#include "fervid/evaluate.h"
#include "recipe_flags.h"

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
    EvalRequest r;
    r.model = o->model;
    r.data = o->data;
    if (cmd->count("--format")) r.format = o->format;
    r.whole_image = o->whole_image;
    if (cmd->count("--ferplus")) r.ferplus = o->ferplus;
    if (cmd->count("--split")) r.split = o->split;
    if (cmd->count("--folds")) r.folds = o->folds;
    if (cmd->count("--fold")) r.fold = o->fold;
    if (cmd->count("--seed")) r.seed = o->seed;
    r.tta = parse_tta(o->tta);
    if (cmd->count("--temperature")) r.temperature = o->temperature;
    r.recipe = o->recipe.given();
    r.out = o->out;
    r.device = o->device;
    const auto run = run_eval(r);
    const auto& metrics = run.metrics;
    if (o->json) {
      std::cout << dump_json(run.report, 2) << "\n";
      return;
    }
    std::cout << fmt::format("{} on {} ({}), tta {}, temperature {:.4g}: {} samples\n", o->model, o->data, run.protocol, o->tta,
                             run.temperature, metrics.samples);
    std::cout << fmt::format("accuracy {:.2f}%  UAR {:.2f}%  macro-F1 {:.4f}  ECE {:.4f}\n", 100 * metrics.accuracy,
                             100 * metrics.uar, metrics.macro_f1, metrics.ece);
    if (run.end_to_end) {
      std::cout << fmt::format("end to end (an image without a face is wrong): {} images, {} without a face, "
                               "accuracy {:.2f}%  UAR {:.2f}%\n",
                               run.end_to_end->images, run.end_to_end->no_face, 100 * run.end_to_end->accuracy,
                               100 * run.end_to_end->uar);
    }
    std::cout << fmt::format("{:<10} {:>9} {:>9} {:>9} {:>8}\n", "class", "precision", "recall", "F1", "support");
    for (size_t k = 0; k < metrics.per_class.size(); ++k) {
      const auto& c = metrics.per_class[k];
      std::cout << fmt::format("{:<10} {:>9.3f} {:>9.3f} {:>9.3f} {:>8}\n", run.class_names[k], c.precision, c.recall, c.f1, c.support);
    }
    const auto& e = metrics.embedding;
    std::cout << fmt::format("embedding: intra-class {:.3f}, inter-class centres mean {:.3f} min {:.3f}, ratio {:.3f}\n",
                             e.intra_mean, e.inter_mean, e.inter_min, e.ratio);
    std::cout << "wrote " << run.out << "/report.json" << "\n";
  });
}

}  // namespace fervid::cli
