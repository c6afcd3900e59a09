// Output shapes of every variant at inputs 48, 64 and 224, batch 1 and an odd batch.
#include <gtest/gtest.h>

#include <tuple>

#include "fervid/model.h"
#include "test_util.h"

using namespace fervid;

namespace {
const Variant kAll[] = {Variant::kVgg16, Variant::kM, Variant::kMca, Variant::kMsa, Variant::kMcsa};

void expect_shapes(Variant v, double width, int input, int batch) {
  ModelConfig c;
  c.variant = v;
  c.width = width;
  c.input_size = input;
  MCSANet net(c);
  net->eval();
  torch::NoGradGuard no_grad;
  auto out = net->forward(torch::randn({batch, 1, input, input}));
  EXPECT_EQ(out.logits.sizes(), (std::vector<int64_t>{batch, 7}));
  EXPECT_EQ(out.embedding.sizes(), (std::vector<int64_t>{batch, c.embedding_dim()}));
  EXPECT_TRUE(torch::isfinite(out.logits).all().item<bool>());
}
}  // namespace

class ShapeTest : public ::testing::TestWithParam<std::tuple<Variant, int, int>> {};

TEST_P(ShapeTest, LogitsAndEmbedding) {
  torch::manual_seed(1);
  const auto [v, input, batch] = GetParam();
  expect_shapes(v, 0.25, input, batch);
}

INSTANTIATE_TEST_SUITE_P(AllVariants, ShapeTest,
                         ::testing::Combine(::testing::ValuesIn(kAll), ::testing::Values(48, 64, 224),
                                            ::testing::Values(1, 3)),
                         [](const auto& info) {
                           return std::string(to_string(std::get<0>(info.param))) + "_in" +
                                  std::to_string(std::get<1>(info.param)) + "_b" +
                                  std::to_string(std::get<2>(info.param));
                         });

TEST(Shapes, FullWidthPaperSizeEveryVariant) {
  torch::manual_seed(2);
  for (auto v : kAll) expect_shapes(v, 1.0, 224, 1);
}

TEST(Shapes, OtherSizesAndWidths) {
  torch::manual_seed(3);
  expect_shapes(Variant::kMcsa, 0.5, 32, 5);   // smallest input: F5 is 2x2
  expect_shapes(Variant::kMcsa, 0.5, 96, 2);
  expect_shapes(Variant::kM, 0.3, 48, 1);
}

TEST(Shapes, WrongInputIsRejectedWithItsShape) {
  ModelConfig c;
  c.width = 0.25;
  MCSANet net(c);
  try {
    net->forward(torch::zeros({1, 1, 64, 64}));
    FAIL() << "64x64 accepted by a 48x48 model";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("[1, 1, 64, 64]"), std::string::npos) << e.what();
  }
  EXPECT_THROW(net->forward(torch::zeros({1, 48, 48})), c10::Error);
}

TEST(Shapes, VariantDecidesWhichModulesExist) {
  auto names = [](Variant v) {
    ModelConfig c;
    c.variant = v;
    c.width = 0.25;
    std::set<std::string> top;
    for (const auto& m : MCSANet(c)->named_children()) top.insert(m.key());
    return top;
  };
  EXPECT_EQ(names(Variant::kVgg16).count("fusion"), 0u);
  EXPECT_EQ(names(Variant::kM).count("fusion"), 1u);
  EXPECT_EQ(names(Variant::kM).count("channel_attention"), 0u);
  EXPECT_EQ(names(Variant::kMca).count("channel_attention"), 1u);
  EXPECT_EQ(names(Variant::kMca).count("spatial_attention"), 0u);
  EXPECT_EQ(names(Variant::kMsa).count("spatial_attention"), 1u);
  EXPECT_EQ(names(Variant::kMcsa).count("channel_attention") + names(Variant::kMcsa).count("spatial_attention"), 2u);
}
