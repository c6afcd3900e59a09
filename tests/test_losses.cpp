// Known values of the losses and of the center update rule.
#include <gtest/gtest.h>

#include <cmath>

#include "fervid/losses.h"
#include "test_util.h"

using namespace fervid;
using fervid::test::Seeded;

class Losses : public Seeded {};

TEST_F(Losses, CrossEntropyMatchesLibtorch) {
  auto z = torch::randn({5, 7});
  auto y = torch::tensor({0, 6, 3, 3, 1}, torch::kLong);
  auto ref = torch::nn::functional::cross_entropy(z, y);
  EXPECT_NEAR(cross_entropy(z, y).item<float>(), ref.item<float>(), 1e-6);
  // Label smoothing eps: (1 - eps) * CE + eps * mean over classes of -log p.
  auto logp = torch::log_softmax(z, 1);
  const double eps = 0.2;
  auto manual = (1 - eps) * ref - eps * logp.mean(1).mean();
  EXPECT_NEAR(cross_entropy(z, y, eps).item<float>(), manual.item<float>(), 1e-5);
  // Soft targets that are one-hot give the hard loss.
  auto onehot = torch::one_hot(y, 7).to(torch::kFloat);
  EXPECT_NEAR(soft_cross_entropy(z, onehot).item<float>(), ref.item<float>(), 1e-6);
  EXPECT_THROW(cross_entropy(z, y, 1.0), c10::Error);
}

TEST_F(Losses, LogitAdjustmentAddsTauTimesTheLogPrior) {
  const auto prior = torch::tensor({0.7, 0.2, 0.1}, torch::kDouble);
  auto z = torch::randn({4, 3}, torch::kDouble);
  EXPECT_TRUE(torch::allclose(logit_adjusted(z, prior, 0.5), z + 0.5 * prior.log().unsqueeze(0)));
  EXPECT_TRUE(torch::equal(logit_adjusted(z, prior, 0), z));
  // A uniform prior shifts every logit alike: the cross-entropy does not change.
  auto y = torch::tensor({0, 1, 2, 1}, torch::kLong);
  EXPECT_NEAR(cross_entropy(logit_adjusted(z, torch::full({3}, 1.0 / 3, torch::kDouble), 1), y).item<double>(),
              cross_entropy(z, y).item<double>(), 1e-12);
  // What it is for: with labels as frequent as the prior (7 : 2 : 1), raw logits shared by every
  // sample that call each class equally likely are already optimal for the adjusted loss (the
  // rows' gradients sum to zero), while the plain loss pulls them towards the majority class:
  // mean over rows of softmax - onehot = 1/3 - 0.7 for class 0.
  std::vector<int64_t> ys;
  for (int64_t k = 0; k < 3; ++k) ys.insert(ys.end(), static_cast<size_t>(std::lround(prior[k].item<double>() * 10)), k);
  const auto labels = torch::tensor(ys, torch::kLong);
  auto flat = torch::zeros({10, 3}, torch::kDouble).requires_grad_(true);
  auto g = torch::autograd::grad({cross_entropy(logit_adjusted(flat, prior, 1), labels)}, {flat})[0];
  EXPECT_LT(g.sum(0).abs().max().item<double>(), 1e-12);
  auto g_plain = torch::autograd::grad({cross_entropy(flat, labels)}, {flat})[0];
  EXPECT_NEAR(g_plain.sum(0)[0].item<double>(), 1.0 / 3 - 0.7, 1e-12) << "the plain loss raises the majority's logit";
  EXPECT_THROW(logit_adjusted(z, torch::tensor({0.5, 0.5}, torch::kDouble), 1), c10::Error);       // wrong K
  EXPECT_THROW(logit_adjusted(z, torch::tensor({1.0, 0.0, 0.0}, torch::kDouble), 1), c10::Error);  // log 0
}

TEST_F(Losses, FerLossAppliesLogitAdjustmentToTheCrossEntropyOnly) {
  LossConfig cfg;
  cfg.logit_adjust = 1.0;
  cfg.lambda_c = 0.1;
  FerLoss loss(cfg, 3, 2);
  auto z = torch::randn({4, 3}), f = torch::randn({4, 2});
  auto y = torch::tensor({0, 1, 2, 0}, torch::kLong);
  EXPECT_THROW(loss->forward(z, f, y), c10::Error) << "no prior given";
  EXPECT_THROW(loss->set_class_prior(torch::tensor({0.5, 0.6, 0.1})), c10::Error) << "does not sum to 1";
  const auto prior = torch::tensor({0.6, 0.3, 0.1});
  loss->set_class_prior(prior);
  const auto parts = loss->forward(z, f, y);
  EXPECT_NEAR(parts.ce.item<float>(), cross_entropy(logit_adjusted(z, prior, 1), y).item<float>(), 1e-6);
  EXPECT_NEAR(parts.center.item<float>(), center_loss(f, y, loss->centers).item<float>(), 1e-6);
  // Soft targets go through the same logits.
  const auto q = torch::softmax(torch::randn({4, 3}), 1);
  EXPECT_NEAR(loss->forward(z, f, y, q).ce.item<float>(), soft_cross_entropy(logit_adjusted(z, prior, 1), q).item<float>(),
              1e-6);
}

TEST_F(Losses, DistillationByHand) {
  // Teacher [ln 3, 0] -> q = (3/4, 1/4); student [0, 0] -> p = (1/2, 1/2).
  const auto teacher = torch::tensor({{std::log(3.0), 0.0}}, torch::kDouble);
  const auto student = torch::zeros({1, 2}, torch::kDouble);
  const double kl = 0.75 * std::log(0.75 / 0.5) + 0.25 * std::log(0.25 / 0.5);
  EXPECT_NEAR(distillation_loss(student, teacher, 1.0).item<double>(), kl, 1e-12);
  // At T = 2 the teacher is softer: q = softmax(ln 3 / 2, 0) = (sqrt 3, 1) / (sqrt 3 + 1), times T^2.
  const double q0 = std::sqrt(3.0) / (std::sqrt(3.0) + 1), q1 = 1 - q0;
  EXPECT_NEAR(distillation_loss(student, teacher, 2.0).item<double>(),
              4 * (q0 * std::log(q0 / 0.5) + q1 * std::log(q1 / 0.5)), 1e-12);
  EXPECT_NEAR(distillation_loss(teacher, teacher, 3.0).item<double>(), 0.0, 1e-12) << "a student that agrees";
  EXPECT_THROW(distillation_loss(student, torch::zeros({1, 3}, torch::kDouble), 1.0), c10::Error);
  EXPECT_THROW(distillation_loss(student, teacher, 0.0), c10::Error);
}

TEST_F(Losses, FerLossWeighsCrossEntropyAgainstDistillation) {
  LossConfig cfg;
  cfg.distill_weight = 0.25;
  cfg.distill_temperature = 2.0;
  FerLoss loss(cfg, 7, 4);
  auto z = torch::randn({5, 7}), t = torch::randn({5, 7}), f = torch::randn({5, 4});
  auto y = torch::tensor({0, 1, 2, 3, 4}, torch::kLong);
  EXPECT_THROW(loss->forward(z, f, y), c10::Error) << "no teacher logits";
  const auto parts = loss->forward(z, f, y, {}, t);
  EXPECT_NEAR(parts.distill.item<float>(), distillation_loss(z, t, 2.0).item<float>(), 1e-6);
  EXPECT_NEAR(parts.total.item<float>(), (0.75 * cross_entropy(z, y) + 0.25 * parts.distill).item<float>(), 1e-5);
  cfg.distill_weight = 0;
  FerLoss plain(cfg, 7, 4);
  const auto off = plain->forward(z, f, y, {}, t);
  EXPECT_EQ(off.distill.item<float>(), 0.0f) << "off: the teacher's logits are ignored";
  EXPECT_NEAR(off.total.item<float>(), cross_entropy(z, y).item<float>(), 1e-6);
}

TEST_F(Losses, CenterLossByHand) {
  auto f = torch::tensor({{1.0, 0.0}, {0.0, 2.0}});
  auto c = torch::tensor({{0.0, 0.0}, {1.0, 1.0}});
  auto y = torch::tensor({0, 1}, torch::kLong);
  // 1/2 * (1 + (1 + 1)) / 2 = 0.75
  EXPECT_NEAR(center_loss(f, y, c).item<float>(), 0.75, 1e-6);
  EXPECT_THROW(center_loss(f, torch::tensor({0, 2}, torch::kLong), c), c10::Error);  // label out of range
}

TEST_F(Losses, IslandByHand) {
  // Two orthogonal centers: 2 ordered pairs of (0 + 1) = 2. Opposite centers: 0.
  EXPECT_NEAR(island_loss(torch::tensor({{1.0, 0.0}, {0.0, 3.0}})).item<float>(), 2.0, 1e-6);
  EXPECT_NEAR(island_loss(torch::tensor({{1.0, 0.0}, {-2.0, 0.0}})).item<float>(), 0.0, 1e-6);
  // Three: two identical and one opposite: pairs (a,a) 2 each way -> 4, (a,b) 0.
  EXPECT_NEAR(island_loss(torch::tensor({{1.0, 1.0}, {2.0, 2.0}, {-1.0, -1.0}})).item<float>(), 4.0, 1e-5);
  // Zero centers (the initial state) stay finite.
  EXPECT_TRUE(std::isfinite(island_loss(torch::zeros({7, 4})).item<float>()));
}

TEST_F(Losses, DdaByHandAndClassBalanced) {
  auto c = torch::tensor({{0.0}, {2.0}});
  auto f = torch::tensor({{0.0}, {0.0}, {0.0}, {2.0}});
  auto y = torch::tensor({0, 0, 0, 1}, torch::kLong);
  // Each sample sits on its own center at distance 2 (squared 4) from the other one:
  // -log(1 / (1 + e^-4)) for every sample, and the class weighting keeps that value.
  const double per = std::log(1 + std::exp(-4.0));
  EXPECT_NEAR(dda_loss(f, y, c).item<float>(), per, 1e-6);
  // Class balance: one bad sample in a minority class counts as much as its whole class.
  auto f2 = torch::tensor({{0.0}, {0.0}, {0.0}, {0.0}});  // the class-1 sample is on center 0
  const double bad = std::log(1 + std::exp(4.0));
  EXPECT_NEAR(dda_loss(f2, y, c).item<float>(), 0.5 * (per + bad), 1e-5);
}

TEST_F(Losses, CombinedIsTheWeightedSum) {
  LossConfig cfg;
  cfg.lambda_c = 0.01;
  cfg.gamma = 0.5;
  cfg.form = SeparationForm::kDda;
  FerLoss loss(cfg, 7, 8);
  {
    torch::NoGradGuard g;
    loss->centers.copy_(torch::randn({7, 8}));
  }
  auto z = torch::randn({6, 7}), f = torch::randn({6, 8});
  auto y = torch::tensor({0, 1, 2, 3, 4, 5}, torch::kLong);
  auto parts = loss->forward(z, f, y);
  EXPECT_NEAR(parts.ce.item<float>(), cross_entropy(z, y).item<float>(), 1e-6);
  EXPECT_NEAR(parts.center.item<float>(), center_loss(f, y, loss->centers).item<float>(), 1e-5);
  EXPECT_NEAR(parts.separation.item<float>(), dda_loss(f, y, loss->centers).item<float>(), 1e-5);
  EXPECT_NEAR(parts.total.item<float>(),
              (parts.ce + 0.01 * parts.center + 0.5 * parts.separation).item<float>(), 1e-5);
  cfg.gamma = 0;
  cfg.lambda_c = 0;
  FerLoss plain(cfg, 7, 8);
  EXPECT_NEAR(plain->forward(z, f, y).total.item<float>(), parts.ce.item<float>(), 1e-6);
}

TEST_F(Losses, CenterUpdateFollowsWenEtAl) {
  LossConfig cfg;
  cfg.lambda_c = 1.0;
  cfg.center_alpha = 0.5;
  FerLoss loss(cfg, 2, 2);
  auto f = torch::tensor({{2.0f, 0.0f}, {4.0f, 0.0f}, {0.0f, 6.0f}});
  auto y = torch::tensor({0, 0, 1}, torch::kLong);
  loss->update_centers(f, y);
  // Class 0: delta = (2c - (2 + 4)) / (1 + 2) = -2 -> c = 0 + 0.5 * 2 = 1. Class 1: delta = -6/2 = -3 -> 1.5.
  EXPECT_TRUE(torch::allclose(loss->centers, torch::tensor({{1.0f, 0.0f}, {0.0f, 1.5f}})));
  // Island separation's gradient reaches the centers through the same update.
  cfg.gamma = 1.0;
  FerLoss island(cfg, 2, 2);
  {
    torch::NoGradGuard g;
    island->centers.copy_(torch::tensor({{1.0f, 0.0f}, {1.0f, 1.0f}}));
  }
  auto before = island->centers.clone();
  auto parts = island->forward(torch::zeros({1, 2}), torch::tensor({{1.0f, 0.0f}}),
                               torch::tensor({0}, torch::kLong));
  parts.total.backward();
  island->update_centers(torch::tensor({{1.0f, 0.0f}}), torch::tensor({0}, torch::kLong));
  // Center 0 sits on its feature (no pull); the island term pushes the two apart in angle.
  const auto cos_before = torch::cosine_similarity(before[0], before[1], 0).item<float>();
  const auto cos_after = torch::cosine_similarity(island->centers[0], island->centers[1], 0).item<float>();
  EXPECT_LT(cos_after, cos_before);
  EXPECT_FALSE(island->centers.grad().defined() && island->centers.grad().abs().sum().item<float>() != 0);
}
