// Known-value tests of the attention and fusion modules.
#include <gtest/gtest.h>

#include "fervid/model.h"
#include "test_util.h"

using namespace fervid;
using fervid::test::Seeded;

class Attention : public Seeded {};

TEST_F(Attention, SeWithZeroedLastLayerHalvesEveryChannel) {
  ChannelAttention se(32, 16);
  torch::NoGradGuard no_grad;
  se->fc2->weight.zero_();
  se->fc2->bias.zero_();
  for (int batch : {1, 3}) {
    auto x = torch::randn({batch, 32, 5, 7});
    EXPECT_TRUE(torch::equal(se->forward(x), x * 0.5)) << "sigmoid(0) = 0.5 exactly";
  }
}

TEST_F(Attention, SeWeightsAreSigmoidOfTheMlp) {
  ChannelAttention se(8, 4);  // hidden 2
  torch::NoGradGuard no_grad;
  auto x = torch::randn({2, 8, 3, 3});
  auto w = se->weights(x);
  EXPECT_TRUE((w > 0).all().item<bool>() && (w < 1).all().item<bool>());
  auto s = x.mean({2, 3});
  auto ref = torch::sigmoid(torch::relu(s.matmul(se->fc1->weight.t()) + se->fc1->bias).matmul(se->fc2->weight.t()) +
                            se->fc2->bias);
  EXPECT_TRUE(torch::allclose(w, ref, 1e-6, 1e-6));
  EXPECT_TRUE(torch::allclose(se->forward(x), x * ref.view({2, 8, 1, 1}), 1e-6, 1e-6));
  EXPECT_EQ(se->fc1->weight.size(0), 2);
}

TEST_F(Attention, SpatialWeightsLieInOpenUnitInterval) {
  SpatialAttention sa(7);
  torch::NoGradGuard no_grad;
  auto x = torch::randn({3, 16, 6, 6}) * 5;
  auto a = sa->attention_map(x);
  EXPECT_EQ(a.sizes(), (std::vector<int64_t>{3, 1, 6, 6}));
  EXPECT_TRUE((a > 0).all().item<bool>() && (a < 1).all().item<bool>());
}

TEST_F(Attention, SpatialWithCentreTapOnMeanIsSigmoidOfChannelMean) {
  SpatialAttention sa(7);
  torch::NoGradGuard no_grad;
  sa->conv->weight.zero_();
  sa->conv->weight[0][0][3][3] = 1.0;   // the mean channel, centre tap
  sa->conv->weight[0][1][3][3] = -0.5;  // the max channel, centre tap
  auto x = torch::randn({1, 4, 5, 5});
  auto expected = x * torch::sigmoid(x.mean(1, true) - 0.5 * std::get<0>(x.max(1, true)));
  EXPECT_TRUE(torch::allclose(sa->forward(x), expected, 1e-6, 1e-6));
  sa->conv->weight.zero_();
  EXPECT_TRUE(torch::equal(sa->forward(x), x * 0.5));
}

TEST_F(Attention, SpatialUsesAWholeSevenBySevenNeighbourhood) {
  SpatialAttention sa(7);
  torch::NoGradGuard no_grad;
  sa->conv->weight.fill_(1.0);
  auto x = torch::zeros({1, 1, 9, 9});
  x[0][0][4][4] = 1.0;  // one hot pixel: mean = max = 1 there, 0 elsewhere
  auto a = sa->attention_map(x);
  // Positions within 3 of the centre see it through both channels (2 * 1); farther ones do not.
  EXPECT_NEAR(a[0][0][1][1].item<float>(), 1.0 / (1.0 + std::exp(-2.0)), 1e-6);
  EXPECT_NEAR(a[0][0][0][0].item<float>(), 0.5, 1e-6);
}

TEST_F(Attention, FusionPoolsToF5AndReduces) {
  FeatureFusion fusion(2, 3, 4, 5);
  torch::NoGradGuard no_grad;
  fusion->eval();
  auto f2 = torch::ones({1, 2, 8, 8}) * 3.0;  // average pooling of a constant map is that constant
  auto f3 = torch::ones({1, 3, 4, 4}) * -1.0;
  auto f5 = torch::randn({1, 4, 2, 2});
  auto& conv = fusion->reduce->conv;
  conv->weight.zero_();
  conv->weight[0][0][0][0] = 1.0;   // output 0 reads F2's channel 0 (= 3)
  conv->weight[1][2][0][0] = -1.0;  // output 1 reads F3's channel 0 (= -1), negated
  conv->weight[2][5][0][0] = 1.0;   // output 2 reads F5's channel 0
  auto y = fusion->forward(f2, f3, f5);  // eval BN with fresh stats is identity (up to eps)
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{1, 5, 2, 2}));
  const double bn = 1.0 / std::sqrt(1.0 + 1e-5);
  EXPECT_TRUE(torch::allclose(y[0][0], torch::full({2, 2}, 3.0 * bn), 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(y[0][1], torch::full({2, 2}, 1.0 * bn), 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(y[0][2], torch::relu(f5[0][0]) * bn, 1e-5, 1e-6));
  EXPECT_TRUE(torch::equal(y[0][3], torch::zeros({2, 2})));
}
