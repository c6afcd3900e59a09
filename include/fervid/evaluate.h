// Evaluation (design.md section 6): predictions of a model on dataset samples, with optional
// test-time augmentation, and the metrics computed from them: accuracy, per-class precision /
// recall / F1, macro-F1, confusion matrix, expected calibration error with its reliability
// bins, and the embedding distances of section 3 (what the paper's Figure 9 compares).
#pragma once

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include <string_view>
#include <vector>

#include "fervid/dataset.h"
#include "fervid/model.h"
#include "fervid/model_io.h"

namespace fervid {

// none: the image; flip: the image and its mirror; tencrop: 5 crops (corners and centre, 90%
// of the side, resized back bilinearly) and their mirrors. Softmax outputs are averaged.
enum class Tta { kNone, kFlip, kTenCrop };
std::string_view to_string(Tta t);
Tta parse_tta(std::string_view s);  // none | flip | tencrop

// The views a TTA mode averages over: [N, 1, S, S] -> [V * N, 1, S, S], view-major.
torch::Tensor tta_views(const torch::Tensor& images, Tta tta);

struct Predictions {
  torch::Tensor probs;       // float [N, K], rows sum to 1
  torch::Tensor labels;      // int64 [N]
  torch::Tensor embeddings;  // float [N, D] (of the plain image, not averaged over views)
};

// Runs `net` (eval mode, no grad) over `indices` of `data` on the device its parameters are on;
// images are normalised the way the model's configuration says. Probabilities are
// softmax(logits / temperature) of each view (model_io.h's Calibration), then averaged over the
// views. The results are CPU tensors.
Predictions predict(MCSANet& net, const Dataset& data, const std::vector<size_t>& indices, Tta tta = Tta::kNone,
                    int batch_size = 256, double temperature = 1.0);

// Temperature scaling fitted by maximum likelihood: the T in [0.05, 20] that minimises the mean
// negative log-likelihood of softmax(log(probs) / T) (probs of single-view predictions made at
// temperature 1: log(probs) differs from the logits by a per-row constant, which softmax
// ignores). The NLL is convex in 1 / T: golden-section search on 1 / T to 1e-6. Pass
// predictions made with Tta::kNone: an average over views is not a softmax of one logit vector.
struct TemperatureFit {
  double temperature = 1.0;
  double nll_before = 0, nll_after = 0;  // at T = 1 and at the fitted T
  int64_t samples = 0;
};
TemperatureFit fit_temperature(const Predictions& single_view);
// The mean NLL of the true labels under softmax(log(probs) / T).
double nll_at_temperature(const Predictions& single_view, double temperature);
// Predictions re-scaled to another temperature: softmax(log(probs) / T) (single-view only).
Predictions at_temperature(const Predictions& single_view, double temperature);

// Fits `net`'s temperature on `indices` of `data` (a validation split: never test data) and
// returns the Calibration to store, its `fit` recording `split` (a description of the samples),
// their count, and NLL and ECE before and after.
Calibration calibrate_temperature(MCSANet& net, const Dataset& data, const std::vector<size_t>& indices,
                                  const std::string& split);

struct ClassMetrics {
  double precision = 0, recall = 0, f1 = 0;
  int64_t support = 0;
};
struct ReliabilityBin {
  double lower = 0, upper = 0, confidence = 0, accuracy = 0;
  int64_t count = 0;
};
struct EmbeddingStats {
  double intra_mean = 0;       // mean distance of an embedding to its own class centre
  double inter_mean = 0;       // mean distance between class centres (classes present)
  double inter_min = 0;        // the closest two centres
  double ratio = 0;            // inter_mean / intra_mean: larger is better separated
  std::vector<int> classes;    // which classes had samples
};
struct EvalMetrics {
  int64_t samples = 0;
  double accuracy = 0, macro_f1 = 0, ece = 0;
  // Unweighted average recall (mean per-class recall over classes with support): the figure
  // that class-imbalanced sets (FER2013's disgust, the xds sets) are compared on.
  double uar = 0;
  std::vector<ClassMetrics> per_class;
  std::vector<std::vector<int64_t>> confusion;  // [true][predicted]
  std::vector<ReliabilityBin> reliability;
  EmbeddingStats embedding;
};

// `class_names` sizes the per-class tables. Macro-F1 and UAR average over classes with support > 0.
EvalMetrics compute_metrics(const Predictions& p, int num_classes, int ece_bins = 15);
EmbeddingStats embedding_stats(const torch::Tensor& embeddings, const torch::Tensor& labels, int num_classes);
// The first two principal components of the embeddings: [N, 2].
torch::Tensor project_2d(const torch::Tensor& embeddings);

nlohmann::json to_json(const EvalMetrics& m, const std::vector<std::string>& class_names);
// The inverse of to_json (per-class entries in the order of the confusion matrix's classes).
// Throws nlohmann::json::exception naming a missing field.
EvalMetrics eval_metrics_from_json(const nlohmann::json& j);

}  // namespace fervid
