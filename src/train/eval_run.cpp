#include "fervid/eval_run.h"

#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <stdexcept>

#include "fervid/atomic_file.h"
#include "fervid/config_json.h"
#include "fervid/data_source.h"
#include "fervid/hash.h"
#include "fervid/json_text.h"
#include "fervid/labels.h"
#include "fervid/model_io.h"
#include "fervid/splits.h"
#include "fervid/train_step.h"
#include "fervid/trained_data.h"
#ifdef FERVID_WITH_OPENCV
#include "fervid/plot.h"
#endif

namespace fervid {

EndToEndMetrics end_to_end_metrics(const EvalMetrics& faces, const ReadReport& missed_report, int num_classes) {
  EndToEndMetrics e;
  e.no_face_per_class.assign(static_cast<size_t>(num_classes), 0);
  for (const auto& issue : missed_report.issues) {
    if (issue.field != "face") continue;
    const auto k = expression_index(std::filesystem::path(issue.where).parent_path().filename().string());
    if (k && *k < num_classes) ++e.no_face_per_class[static_cast<size_t>(*k)];
  }
  int64_t correct = 0;
  double recall_sum = 0;
  int present = 0;
  for (size_t k = 0; k < e.no_face_per_class.size() && k < faces.per_class.size(); ++k) {
    const auto& c = faces.per_class[k];
    const auto hits = static_cast<int64_t>(std::llround(c.recall * static_cast<double>(c.support)));
    const int64_t n = c.support + e.no_face_per_class[k];
    e.images += n;
    correct += hits;
    e.no_face += e.no_face_per_class[k];
    if (n > 0) {
      recall_sum += static_cast<double>(hits) / static_cast<double>(n);
      ++present;
    }
  }
  e.faces_found = faces.samples;
  e.accuracy = e.images > 0 ? static_cast<double>(correct) / static_cast<double>(e.images) : 0.0;
  e.uar = present > 0 ? recall_sum / present : 0.0;
  return e;
}

nlohmann::json to_json(const EndToEndMetrics& m) {
  return {{"images", m.images},
          {"faces_found", m.faces_found},
          {"no_face", m.no_face},
          {"no_face_per_class", m.no_face_per_class},
          {"accuracy", m.accuracy},
          {"uar", m.uar},
          {"rule", "an image without a face found counts as a wrong answer of its class"}};
}

EvalRun run_eval(const EvalRequest& r) {
  const auto device = resolve_device(r.device);  // an unavailable device fails before any work
  auto model = load_model(r.model);
  model.net->to(device);
  const auto& cfg = model.net->config();
  if (r.whole_image && r.format && *r.format != "folder") {
    throw std::invalid_argument("eval: --whole-image reads a folder of crops (--format folder), not --format " + *r.format);
  }
  // The data the way the model was trained (its recorded source options and seed), when the
  // data given is of the training data's format; then the request's options.
  const auto trained = trained_data(model.metadata, r.data);
  DataSourceOptions so = trained.same_format ? trained.config.source : DataSourceOptions{};
  so.soft_targets = false;
  if (so.ferplus_mix > 0) {  // trained on FER2013's labels mixed with FER+ votes: scored on FER2013's
    so.ferplus.clear();
    so.ferplus_mix = 0;
  }
  if (r.format || r.whole_image) so.format = parse_source_format(r.whole_image ? "folder" : *r.format);
  if (r.ferplus) so.ferplus = *r.ferplus == "none" ? "" : *r.ferplus;
  so.size = cfg.input_size;
  // Photos and CK+ are cropped with the model's recipe, then the request's; other formats hold
  // cropped faces (a recipe option is then an error naming it).
  so.face = r.recipe;
  const bool cropped_here = detects_faces(resolve_source_format(r.data, so.format));
  if (cropped_here) so.face = FaceRecipeOverrides::all_of(so.face.apply(model.face_recipe));
  // Sources that detect faces are read afresh, so that the images without a face are counted.
  so.use_cache = !cropped_here;
  const auto src = open_data_source(r.data, so);

  EvalRun run;
  const bool fold_model = trained.same_format && trained.config.folds > 0 && !r.split;
  const int folds = r.folds ? *r.folds : fold_model ? trained.config.folds : 0;
  const int fold = r.fold ? *r.fold : fold_model ? trained.config.fold : 0;
  const uint64_t seed = r.seed ? *r.seed : trained.known ? trained.config.seed : 1;
  std::vector<size_t> idx;
  std::string split = r.split.value_or("PrivateTest");
  if (folds > 0) {
    if (fold < 0 || fold >= folds) throw std::invalid_argument(fmt::format("eval: --fold {} is not in [0, {})", fold, folds));
    idx = subject_kfold(src.data, folds, seed).at(static_cast<size_t>(fold));
    run.protocol = fmt::format("subject-independent fold {} of {} (seed {})", fold, folds, seed);
  } else {
    // A folder without splits (face crops, photos): every sample, unless a split was asked for.
    if (!r.split && src.data.indices(Split::kPrivateTest).empty()) split = "all";
    idx = split_indices(src.data, split);
    run.protocol = split == "all" ? "all samples" : "split " + split;
  }
  if (idx.empty()) throw std::invalid_argument("no samples in " + run.protocol + " of " + r.data);
  run.temperature = r.temperature.value_or(model.calibration.temperature);
  const auto preds = predict(model.net, src.data, idx, r.tta, 256, run.temperature);
  run.metrics = compute_metrics(preds, cfg.num_classes());
  run.class_names = cfg.classes();
  const std::string tta(to_string(r.tta));
  run.out = !r.out.empty() ? r.out : fmt::format("eval-{}-{}", folds > 0 ? "fold" + std::to_string(fold) : split, tta);
  std::filesystem::create_directories(run.out);
  std::error_code ec;
  const bool data_is_file = std::filesystem::is_regular_file(r.data, ec);
  run.report = {{"model", r.model},
                {"model_sha256", sha256_file(r.model)},
                {"model_config", config_to_json(cfg)},
                {"model_seed", model.metadata.value("seed", nlohmann::json())},
                {"data", r.data},
                {"data_sha256", data_is_file ? nlohmann::json(sha256_file(r.data)) : nlohmann::json()},
                {"data_key", src.cache_key},
                {"data_source", to_json(so)},
                {"as_trained", trained.same_format},
                {"ferplus", so.ferplus},
                {"protocol", run.protocol},
                {"tta", tta},
                {"single_crop", r.tta == Tta::kNone},
                {"device", device.str()},
                {"temperature", run.temperature},
                {"model_calibration", model.calibration.to_json()},
                {"model_face_recipe", to_json(model.face_recipe)},
                {"face_recipe", cropped_here ? to_json(source_face_recipe(so)) : nlohmann::json()},
                {"metrics", to_json(run.metrics, run.class_names)}};
  if (cropped_here && folds == 0 && split == "all") {
    run.end_to_end = end_to_end_metrics(run.metrics, src.report, cfg.num_classes());
    run.report["end_to_end"] = to_json(*run.end_to_end);
  }
  const std::string report_path = run.out + "/report.json";
  write_file_atomically(report_path, dump_json(run.report, 2) + "\n");
  run.files.push_back(report_path);
#ifdef FERVID_WITH_OPENCV
  const std::string title = fmt::format("{} {} tta={}", std::filesystem::path(r.model).filename().string(), run.protocol, tta);
  write_confusion_png(run.out + "/confusion.png", run.metrics.confusion, run.class_names, title);
  write_reliability_png(run.out + "/reliability.png", run.metrics,
                        fmt::format("reliability, temperature {:.3g}", run.temperature));
  write_scatter_png(run.out + "/embedding.png", project_2d(preds.embeddings), preds.labels, run.class_names,
                    "embedding, first two principal components");
  for (const char* f : {"/confusion.png", "/reliability.png", "/embedding.png"}) run.files.push_back(run.out + f);
#endif
  return run;
}

}  // namespace fervid
