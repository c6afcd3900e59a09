// A small mcsa network must be able to fit 32 fixed synthetic samples exactly (style.md habit 8).
#include <gtest/gtest.h>

#include <torch/optim/adam.h>

#include "fervid/losses.h"
#include "fervid/model.h"
#include "fervid/train_step.h"
#include "test_util.h"

using namespace fervid;

TEST(Learnability, SmallMcsaReachesFullTrainingAccuracy) {
  torch::manual_seed(11);
  ModelConfig c;
  c.variant = Variant::kMcsa;
  c.width = 0.25;
  c.input_size = 32;
  c.dropout = 0.0;
  MCSANet net(c);
  // 32 samples, 7 classes, labels and images random: only memorisation can fit them.
  auto x = torch::randn({32, 1, 32, 32});
  auto y = torch::arange(32, torch::kLong).remainder(7);
  LossConfig lc;
  lc.lambda_c = 0.01;
  lc.gamma = 0.01;
  lc.form = SeparationForm::kDda;
  FerLoss loss(lc, 7, c.embedding_dim());
  torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(3e-3));

  double first = 0, last = 0;
  for (int step = 0; step < 150; ++step) {
    net->train();
    const auto parts = train_step(net, loss, opt, x, y).loss;
    if (step == 0) first = parts.ce.item<double>();
    last = parts.ce.item<double>();
  }
  net->eval();
  torch::NoGradGuard no_grad;
  auto pred = net->forward(x).logits.argmax(1);
  EXPECT_EQ(pred.eq(y).sum().item<int64_t>(), 32) << "first CE " << first << ", last " << last;
  EXPECT_LT(last, 0.1 * first);
}
