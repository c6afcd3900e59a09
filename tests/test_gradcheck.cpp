// Double-precision central-difference gradient checks of the custom layers and losses
// (style.md habit 4).
#include <gtest/gtest.h>

#include "fervid/losses.h"
#include "fervid/model.h"
#include "test_util.h"

using namespace fervid;
using fervid::test::expect_gradients_match;
using fervid::test::params_of;
using fervid::test::Seeded;

namespace {
torch::Tensor leaf(std::vector<int64_t> shape, double scale = 1.0) {
  return (torch::randn(shape, torch::kDouble) * scale).requires_grad_(true);
}
torch::Tensor labels(std::vector<int64_t> v) { return torch::tensor(v, torch::kLong); }
}  // namespace

class GradCheck : public Seeded {};

TEST_F(GradCheck, ChannelAttention) {
  ChannelAttention se(16, 4);
  se->to(torch::kDouble);
  auto x = leaf({3, 16, 4, 5});
  auto probe = torch::randn({3, 16, 4, 5}, torch::kDouble);  // a random linear functional of the output
  auto inputs = params_of(*se);
  inputs.push_back(x);
  expect_gradients_match([&] { return (se->forward(x) * probe).sum(); }, inputs);
}

TEST_F(GradCheck, SpatialAttention) {
  SpatialAttention sa(7);
  sa->to(torch::kDouble);
  auto x = leaf({2, 6, 7, 7});
  auto probe = torch::randn({2, 6, 7, 7}, torch::kDouble);
  auto inputs = params_of(*sa);
  inputs.push_back(x);
  expect_gradients_match([&] { return (sa->forward(x) * probe).sum(); }, inputs);
}

TEST_F(GradCheck, FeatureFusionBlock) {
  FeatureFusion fusion(3, 4, 5, 6);
  fusion->to(torch::kDouble);
  fusion->train();  // batch statistics: the output depends on every input
  auto f2 = leaf({2, 3, 8, 8}), f3 = leaf({2, 4, 4, 4}), f5 = leaf({2, 5, 2, 2});
  auto probe = torch::randn({2, 6, 2, 2}, torch::kDouble);
  auto inputs = params_of(*fusion);
  inputs.insert(inputs.end(), {f2, f3, f5});
  expect_gradients_match([&] { return (fusion->forward(f2, f3, f5) * probe).sum(); }, inputs);
}

TEST_F(GradCheck, InceptionBlock) {
  InceptionBlock block(8, 16);
  block->to(torch::kDouble);
  auto x = leaf({2, 8, 4, 4});
  auto probe = torch::randn({2, 16, 4, 4}, torch::kDouble);
  expect_gradients_match([&] { return (block->forward(x) * probe).sum(); }, {x});
}

TEST_F(GradCheck, CenterLoss) {
  auto f = leaf({5, 4}), c = leaf({3, 4});
  auto y = labels({0, 2, 2, 1, 0});
  expect_gradients_match([&] { return center_loss(f, y, c); }, {f, c});
}

TEST_F(GradCheck, IslandSeparation) {
  auto c = leaf({7, 5});
  expect_gradients_match([&] { return island_loss(c); }, {c});
}

TEST_F(GradCheck, DdaSeparation) {
  auto f = leaf({6, 4}, 0.5), c = leaf({3, 4}, 0.5);
  auto y = labels({0, 0, 0, 0, 1, 2});  // unbalanced on purpose: per-class weights matter
  expect_gradients_match([&] { return dda_loss(f, y, c); }, {f, c});
}

TEST_F(GradCheck, CrossEntropyHardSmoothedAndSoft) {
  auto z = leaf({4, 7});
  auto y = labels({3, 0, 6, 3});
  expect_gradients_match([&] { return cross_entropy(z, y); }, {z});
  expect_gradients_match([&] { return cross_entropy(z, y, 0.1); }, {z});
  auto q = torch::softmax(torch::randn({4, 7}, torch::kDouble), 1);
  expect_gradients_match([&] { return soft_cross_entropy(z, q); }, {z});
}

TEST_F(GradCheck, LogitAdjustedCrossEntropy) {
  auto z = leaf({4, 7});
  auto y = labels({3, 0, 6, 3});
  const auto prior = torch::softmax(torch::randn({7}, torch::kDouble), 0);
  expect_gradients_match([&] { return cross_entropy(logit_adjusted(z, prior, 1.0), y, 0.1); }, {z});
  LossConfig cfg;
  cfg.logit_adjust = 0.5;
  FerLoss loss(cfg, 7, 3);
  loss->to(torch::kDouble);
  loss->set_class_prior(prior);
  auto f = leaf({4, 3});
  expect_gradients_match([&] { return loss->forward(z, f, y).total; }, {z});
}

TEST_F(GradCheck, Distillation) {
  auto z = leaf({4, 7});
  const auto t = torch::randn({4, 7}, torch::kDouble);
  expect_gradients_match([&] { return distillation_loss(z, t, 3.0); }, {z});
  LossConfig cfg;
  cfg.distill_weight = 0.6;
  FerLoss loss(cfg, 7, 3);
  loss->to(torch::kDouble);
  auto f = leaf({4, 3});
  auto y = labels({3, 0, 6, 3});
  expect_gradients_match([&] { return loss->forward(z, f, y, {}, t).total; }, {z});
}

TEST_F(GradCheck, CombinedLossBothForms) {
  for (auto form : {SeparationForm::kIsland, SeparationForm::kDda}) {
    LossConfig cfg;
    cfg.lambda_c = 0.3;
    cfg.gamma = 0.2;
    cfg.form = form;
    FerLoss loss(cfg, 3, 4);
    loss->to(torch::kDouble);
    {
      torch::NoGradGuard g;
      loss->centers.copy_(torch::randn({3, 4}, torch::kDouble));
    }
    auto z = leaf({5, 3}), f = leaf({5, 4});
    auto y = labels({0, 1, 2, 1, 1});
    expect_gradients_match([&] { return loss->forward(z, f, y).total; }, {z, f});
    // The center term sees detached centers (they follow Wen et al.'s update rule), so the
    // centers' gradient is exactly the separation term's.
    auto g_total = torch::autograd::grad({loss->forward(z, f, y).total}, {loss->centers})[0];
    auto g_sep = torch::autograd::grad({cfg.gamma * loss->forward(z, f, y).separation}, {loss->centers})[0];
    EXPECT_TRUE(torch::allclose(g_total, g_sep, 1e-12, 1e-12));
    expect_gradients_match([&] { return cfg.gamma * loss->forward(z, f, y).separation; }, {loss->centers});
  }
}
