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
