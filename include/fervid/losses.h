// Losses (design.md section 3):  L = CE + lambda_c * L_center + gamma * L_sep.
//
// Shapes: logits [N, K]; embedding (features) [N, D]; labels int64 [N] in [0, K);
// soft targets float [N, K], rows summing to 1; centers [K, D].
// Every function works in float or double and is differentiable with respect to its
// floating-point inputs (gradient-checked in tests/test_losses.cpp).
#pragma once

#include <torch/nn.h>

#include <string_view>

namespace fervid {

// The separation term's form: see island_loss() and dda_loss() below.
enum class SeparationForm { kIsland, kDda };
std::string_view to_string(SeparationForm f);
SeparationForm parse_separation_form(std::string_view s);  // "island" | "dda"

// Mean softmax cross-entropy. With hard labels, `label_smoothing` eps mixes the one-hot
// target with the uniform distribution: q = (1 - eps) * onehot + eps / K.
torch::Tensor cross_entropy(const torch::Tensor& logits, const torch::Tensor& labels,
                            double label_smoothing = 0.0);
// Mean cross-entropy against soft targets (e.g. FER+ vote distributions): -sum_k q_k log p_k.
torch::Tensor soft_cross_entropy(const torch::Tensor& logits, const torch::Tensor& targets);

// Logit adjustment (Menon et al. 2021, "Long-tail learning via logit adjustment"): the logits
// the cross-entropy sees during training, logits + tau * log(prior) ([K] class frequencies of
// the training samples, summing to 1). The network then learns logits of p(x | y), so at
// inference (raw logits) a rare class is called as readily as a common one: it trades a little
// accuracy on a test set as skewed as FER2013's for recall of the rare classes (disgust, fear)
// and mean per-class recall. tau = 0 leaves the logits as they are.
torch::Tensor logit_adjusted(const torch::Tensor& logits, const torch::Tensor& prior, double tau);

// Knowledge distillation (Hinton et al. 2015): T^2 * mean over samples of
// KL(softmax(teacher / T) || softmax(student / T)). The T^2 keeps its gradient's scale as T
// changes. The teacher's logits are constants (detached).
torch::Tensor distillation_loss(const torch::Tensor& student_logits, const torch::Tensor& teacher_logits,
                                double temperature);

// Center loss (Wen et al. 2016): (1/N) sum_i 1/2 ||f_i - c_{y_i}||^2.
torch::Tensor center_loss(const torch::Tensor& features, const torch::Tensor& labels,
                          const torch::Tensor& centers);

// Island form (Cai et al. 2018): sum over ordered class pairs j != k of (cos(c_j, c_k) + 1).
// Acts on the centers only; it spreads them apart in angle whatever each class's size.
// A center of norm below 1e-8 is treated as having norm 1e-8 (centers start at zero).
torch::Tensor island_loss(const torch::Tensor& centers);

// DDA form (after Farzaneh and Qi 2020, "Discriminant Distribution-Agnostic loss"):
//   p_ik = softmax_k(-||f_i - c_k||^2),
//   L = (1/|P|) sum_{k in P} (1/n_k) sum_{i: y_i = k} -log p_{i,k},
// where P is the set of classes present in the batch and n_k their counts: every class weighs
// the same whatever its frequency, so minority classes are pushed from the majority ones.
torch::Tensor dda_loss(const torch::Tensor& features, const torch::Tensor& labels,
                       const torch::Tensor& centers);

struct LossConfig {
  double label_smoothing = 0.0;
  double lambda_c = 0.0;      // weight of the center loss
  double center_alpha = 0.5;  // center update rate (Wen et al.'s alpha)
  double gamma = 0.0;         // weight of the separation term
  SeparationForm form = SeparationForm::kIsland;
  double logit_adjust = 0.0;  // tau of logit_adjusted() in the cross-entropy; 0: off
  // Distillation from a teacher's logits: the cross-entropy weighs 1 - distill_weight and
  // distillation_loss() at distill_temperature weighs distill_weight. 0: off.
  double distill_weight = 0.0;
  double distill_temperature = 4.0;
};

struct LossParts {
  torch::Tensor total, ce, center, separation;  // scalars; center/separation are 0 when off
  torch::Tensor distill;                        // 0 when off
};

// The combined loss. Owns the class centers ([K, D], registered as the parameter "centers" so
// checkpoints carry them, but NOT trained by the optimizer): after backward(), call
// update_centers(), which applies Wen et al.'s rule
//   c_j <- c_j - alpha * (sum_{i: y_i = j} (c_j - f_i) / (1 + n_j) + dL_sep/dc_j)
// (the center term sees detached centers; the separation term's gradient reaches them here).
class FerLossImpl : public torch::nn::Module {
 public:
  FerLossImpl(LossConfig config, int num_classes, int embedding_dim);
  // `soft_targets` is optional ([N, K]); when given, CE uses it and labels drive the centers.
  // `teacher_logits` ([N, K]) is required when config().distill_weight > 0, ignored otherwise.
  // total = (1 - w) CE + w distill + lambda_c center + gamma separation (w = distill_weight).
  LossParts forward(const torch::Tensor& logits, const torch::Tensor& embedding,
                    const torch::Tensor& labels, const torch::Tensor& soft_targets = {},
                    const torch::Tensor& teacher_logits = {});
  void update_centers(const torch::Tensor& embedding, const torch::Tensor& labels);
  // The training samples' class frequencies ([K], positive, summing to 1) that logit adjustment
  // uses. Required before forward() when config().logit_adjust > 0. Not saved in checkpoints:
  // the trainer recomputes it from the training split.
  void set_class_prior(const torch::Tensor& prior);
  const LossConfig& config() const { return config_; }

  torch::Tensor centers;

 private:
  LossConfig config_;
  torch::Tensor prior_;
};
TORCH_MODULE(FerLoss);

}  // namespace fervid
