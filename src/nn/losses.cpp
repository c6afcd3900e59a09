#include "fervid/losses.h"

#include <cmath>
#include <stdexcept>
#include <string>

namespace fervid {

namespace {
void check_batch(const torch::Tensor& features, const torch::Tensor& labels,
                 const torch::Tensor& centers, const char* who) {
  TORCH_CHECK(features.dim() == 2, who, ": features must be [N, D], got ", features.sizes());
  TORCH_CHECK(centers.dim() == 2 && centers.size(1) == features.size(1), who,
              ": centers must be [K, D] with D = ", features.size(1), ", got ", centers.sizes());
  TORCH_CHECK(labels.dim() == 1 && labels.size(0) == features.size(0), who,
              ": labels must be [N] with N = ", features.size(0), ", got ", labels.sizes());
  TORCH_CHECK(labels.scalar_type() == torch::kLong, who, ": labels must be int64");
  if (labels.numel() > 0) {
    TORCH_CHECK(labels.min().item<int64_t>() >= 0 && labels.max().item<int64_t>() < centers.size(0),
                who, ": labels must lie in [0, ", centers.size(0), ")");
  }
}
}  // namespace

std::string_view to_string(SeparationForm f) { return f == SeparationForm::kDda ? "dda" : "island"; }

SeparationForm parse_separation_form(std::string_view s) {
  if (s == "island") return SeparationForm::kIsland;
  if (s == "dda") return SeparationForm::kDda;
  throw std::invalid_argument("unknown separation form '" + std::string(s) +
                              "' (expected island or dda)");
}

torch::Tensor cross_entropy(const torch::Tensor& logits, const torch::Tensor& labels,
                            double label_smoothing) {
  TORCH_CHECK(logits.dim() == 2, "cross_entropy: logits must be [N, K], got ", logits.sizes());
  TORCH_CHECK(labels.dim() == 1 && labels.size(0) == logits.size(0),
              "cross_entropy: labels must be [N] with N = ", logits.size(0), ", got ", labels.sizes());
  TORCH_CHECK(label_smoothing >= 0.0 && label_smoothing < 1.0,
              "cross_entropy: label_smoothing must lie in [0, 1), got ", label_smoothing);
  const auto k = logits.size(1);
  auto target = torch::one_hot(labels, k).to(logits.scalar_type());
  if (label_smoothing > 0.0) target = target * (1.0 - label_smoothing) + label_smoothing / k;
  return soft_cross_entropy(logits, target);
}

torch::Tensor soft_cross_entropy(const torch::Tensor& logits, const torch::Tensor& targets) {
  TORCH_CHECK(logits.dim() == 2 && targets.sizes() == logits.sizes(),
              "soft_cross_entropy: targets must match logits [N, K], got ", targets.sizes(),
              " and ", logits.sizes());
  return -(targets * torch::log_softmax(logits, 1)).sum(1).mean();
}

torch::Tensor center_loss(const torch::Tensor& features, const torch::Tensor& labels,
                          const torch::Tensor& centers) {
  check_batch(features, labels, centers, "center_loss");
  auto diff = features - centers.index_select(0, labels);
  return 0.5 * diff.pow(2).sum(1).mean();
}

torch::Tensor island_loss(const torch::Tensor& centers) {
  TORCH_CHECK(centers.dim() == 2 && centers.size(0) >= 2,
              "island_loss: centers must be [K >= 2, D], got ", centers.sizes());
  auto unit = centers / centers.norm(2, 1, /*keepdim=*/true).clamp_min(1e-8);
  auto cos = unit.matmul(unit.t());                  // [K, K], cos(c_j, c_k)
  auto off_diagonal = 1.0 - torch::eye(centers.size(0), centers.options());
  return ((cos + 1.0) * off_diagonal).sum();
}

torch::Tensor dda_loss(const torch::Tensor& features, const torch::Tensor& labels,
                       const torch::Tensor& centers) {
  check_batch(features, labels, centers, "dda_loss");
  // Squared distances [N, K] without forming N x K x D.
  auto d2 = features.pow(2).sum(1, true) - 2.0 * features.matmul(centers.t()) +
            centers.pow(2).sum(1).unsqueeze(0);
  auto nll = -torch::log_softmax(-d2, 1).gather(1, labels.unsqueeze(1)).squeeze(1);  // [N]
  auto counts = torch::bincount(labels, {}, centers.size(0)).to(features.scalar_type());
  auto weight = 1.0 / counts.index_select(0, labels);  // 1 / n_{y_i}
  const auto present = (counts > 0).sum().to(features.scalar_type());
  return (nll * weight).sum() / present;
}

torch::Tensor logit_adjusted(const torch::Tensor& logits, const torch::Tensor& prior, double tau) {
  TORCH_CHECK(logits.dim() == 2, "logit_adjusted: logits must be [N, K], got ", logits.sizes());
  TORCH_CHECK(prior.dim() == 1 && prior.size(0) == logits.size(1),
              "logit_adjusted: the prior must be [K] with K = ", logits.size(1), ", got ", prior.sizes());
  TORCH_CHECK(tau >= 0, "logit_adjusted: tau must be >= 0, got ", tau);
  if (tau == 0) return logits;
  const auto p = prior.to(logits.options()).detach();
  TORCH_CHECK(p.min().item<double>() > 0, "logit_adjusted: every class needs a prior > 0");
  return logits + tau * p.log().unsqueeze(0);
}

torch::Tensor distillation_loss(const torch::Tensor& student, const torch::Tensor& teacher, double temperature) {
  TORCH_CHECK(student.dim() == 2 && teacher.sizes() == student.sizes(),
              "distillation_loss: teacher logits must match the student's [N, K] ", student.sizes(), ", got ",
              teacher.sizes());
  TORCH_CHECK(temperature > 0, "distillation_loss: temperature must be > 0, got ", temperature);
  const auto q_log = torch::log_softmax(teacher.detach().to(student.scalar_type()) / temperature, 1);
  const auto p_log = torch::log_softmax(student / temperature, 1);
  return temperature * temperature * (q_log.exp() * (q_log - p_log)).sum(1).mean();
}

FerLossImpl::FerLossImpl(LossConfig config, int num_classes, int embedding_dim)
    : config_(config) {
  TORCH_CHECK(config_.lambda_c >= 0 && config_.gamma >= 0, "FerLoss: lambda_c and gamma must be >= 0");
  TORCH_CHECK(config_.logit_adjust >= 0, "FerLoss: logit_adjust must be >= 0, got ", config_.logit_adjust);
  TORCH_CHECK(config_.distill_weight >= 0 && config_.distill_weight <= 1,
              "FerLoss: distill_weight must lie in [0, 1], got ", config_.distill_weight);
  TORCH_CHECK(config_.distill_temperature > 0, "FerLoss: distill_temperature must be > 0, got ",
              config_.distill_temperature);
  TORCH_CHECK(config_.center_alpha >= 0 && config_.center_alpha <= 1,
              "FerLoss: center_alpha must lie in [0, 1], got ", config_.center_alpha);
  centers = register_parameter("centers", torch::zeros({num_classes, embedding_dim}));
}

LossParts FerLossImpl::forward(const torch::Tensor& logits, const torch::Tensor& embedding,
                               const torch::Tensor& labels, const torch::Tensor& soft_targets,
                               const torch::Tensor& teacher_logits) {
  LossParts parts;
  torch::Tensor z = logits;
  if (config_.logit_adjust > 0) {
    TORCH_CHECK(prior_.defined(), "FerLoss: logit_adjust needs the class prior (set_class_prior)");
    // logit_adjusted() without its checks: set_class_prior() made them once, and here, every
    // training step, they would wait for the device.
    z = logits + config_.logit_adjust * prior_.to(logits.options()).log().unsqueeze(0);
  }
  parts.ce = soft_targets.defined() ? soft_cross_entropy(z, soft_targets)
                                    : cross_entropy(z, labels, config_.label_smoothing);
  const auto zero = torch::zeros({}, logits.options());
  parts.center = config_.lambda_c > 0 ? center_loss(embedding, labels, centers.detach()) : zero;
  if (config_.gamma > 0) {
    parts.separation = config_.form == SeparationForm::kIsland
                           ? island_loss(centers)
                           : dda_loss(embedding, labels, centers);
  } else {
    parts.separation = zero;
  }
  const double w = config_.distill_weight;
  if (w > 0) {
    TORCH_CHECK(teacher_logits.defined(), "FerLoss: distill_weight > 0 needs the teacher's logits");
    parts.distill = distillation_loss(logits, teacher_logits, config_.distill_temperature);
  } else {
    parts.distill = zero;
  }
  parts.total = (1 - w) * parts.ce + w * parts.distill + config_.lambda_c * parts.center +
                config_.gamma * parts.separation;
  return parts;
}

void FerLossImpl::set_class_prior(const torch::Tensor& prior) {
  TORCH_CHECK(prior.dim() == 1 && prior.size(0) == centers.size(0), "FerLoss: the class prior must be [K] with K = ",
              centers.size(0), ", got ", prior.sizes());
  const auto p = prior.to(torch::kDouble);
  TORCH_CHECK(p.min().item<double>() > 0 && std::abs(p.sum().item<double>() - 1) < 1e-4,
              "FerLoss: the class prior must be positive and sum to 1");
  prior_ = prior.to(torch::kFloat).detach().clone();
}

void FerLossImpl::update_centers(const torch::Tensor& embedding, const torch::Tensor& labels) {
  torch::NoGradGuard no_grad;
  const auto f = embedding.detach().to(centers.scalar_type());
  check_batch(f, labels, centers, "FerLoss::update_centers");
  const auto k = centers.size(0);
  // Wen et al.: delta_j = sum_{i: y_i = j} (c_j - f_i) / (1 + n_j).
  auto counts = torch::bincount(labels, {}, k).to(f.scalar_type());
  auto sum_f = torch::zeros_like(centers).index_add_(0, labels, f);
  auto delta = (centers * counts.unsqueeze(1) - sum_f) / (1.0 + counts.unsqueeze(1));
  auto step = delta;
  if (centers.grad().defined()) {
    step = step + centers.grad();
    centers.mutable_grad().zero_();
  }
  centers.sub_(config_.center_alpha * step);
}

}  // namespace fervid
