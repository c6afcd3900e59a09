// Parameter and MAC counts against formulas written out here from design.md, independently
// of the module code.
#include <gtest/gtest.h>

#include <cmath>

#include "fervid/summary.h"

using namespace fervid;

namespace {
int64_t conv_bn(int64_t k, int64_t in, int64_t out) { return k * k * in * out + 2 * out; }

// VGG16's block widths 64, 128, 256, 512, 512 times the width multiplier, rounded to a multiple
// of 8 (at least 8).
void channels(const ModelConfig& c, int64_t ch[5]) {
  const int base[5] = {64, 128, 256, 512, 512};
  for (int b = 0; b < 5; ++b) ch[b] = std::max<int64_t>(8, std::lround(base[b] * c.width / 8.0) * 8);
}

int64_t inception(int64_t in, int64_t out) {
  const int64_t c1 = out / 4, c3 = out / 2, c5 = out / 8, cp = out / 8;
  return conv_bn(1, in, c1) + conv_bn(1, in, c3 / 2) + conv_bn(3, c3 / 2, c3) + conv_bn(1, in, c5) +
         2 * conv_bn(3, c5, c5) + conv_bn(1, in, cp);
}

int64_t expected_params(const ModelConfig& c) {
  const int layers[5] = {2, 2, 3, 3, 3};
  int64_t ch[5];
  channels(c, ch);
  const bool fused = c.variant != Variant::kVgg16;
  const bool multiscale = c.multiscale < 0 ? fused : c.multiscale != 0;
  int64_t total = 0, in = 1;
  for (int b = 0; b < 5; ++b) {
    for (int l = 0; l < layers[b]; ++l) {
      total += (multiscale && b >= 2 && l == layers[b] - 1) ? inception(in, ch[b]) : conv_bn(3, in, ch[b]);
      in = ch[b];
    }
  }
  const int64_t d = ch[4];
  if (fused) total += conv_bn(1, ch[1] + ch[2] + ch[4], d);
  if (c.variant == Variant::kMca || c.variant == Variant::kMcsa) {
    const int64_t h = std::max<int64_t>(1, d / c.se_reduction);
    total += d * h + h + h * d + d;
  }
  if (c.variant == Variant::kMsa || c.variant == Variant::kMcsa) total += 2 * c.spatial_kernel * c.spatial_kernel;
  return total + d * 7 + 7;
}

// Multiply-accumulates of the whole network, by the counting rules of `fervid info`: a
// convolution costs K^2 * I * O per output position, a fully connected layer its weight count,
// and element-wise work (BN's scale and shift, pooling into the fusion, attention's squeeze and
// rescaling, GAP) one per element touched.
int64_t expected_macs(const ModelConfig& c) {
  const int layers[5] = {2, 2, 3, 3, 3};
  int64_t ch[5];
  channels(c, ch);
  const bool fused = c.variant != Variant::kVgg16;
  const bool multiscale = c.multiscale < 0 ? fused : c.multiscale != 0;
  auto conv_bn_macs = [](int64_t k, int64_t in, int64_t out, int64_t side) {
    return (k * k * in * out + out) * side * side;
  };
  int64_t total = 0, in = 1;
  for (int b = 0; b < 5; ++b) {
    const int64_t side = c.input_size >> b;
    for (int l = 0; l < layers[b]; ++l) {
      const int64_t out = ch[b];
      if (multiscale && b >= 2 && l == layers[b] - 1) {
        const int64_t c1 = out / 4, c3 = out / 2, c5 = out / 8, cp = out / 8;
        total += conv_bn_macs(1, in, c1, side) + conv_bn_macs(1, in, c3 / 2, side) +
                 conv_bn_macs(3, c3 / 2, c3, side) + conv_bn_macs(1, in, c5, side) +
                 2 * conv_bn_macs(3, c5, c5, side) + conv_bn_macs(1, in, cp, side);
      } else {
        total += conv_bn_macs(3, in, out, side);
      }
      in = out;
    }
  }
  const int64_t d = ch[4], s = c.input_size / 16, area = s * s;
  if (fused) {
    total += ch[1] * (c.input_size / 2) * (c.input_size / 2) + ch[2] * (c.input_size / 4) * (c.input_size / 4);
    total += conv_bn_macs(1, ch[1] + ch[2] + ch[4], d, s);
  }
  if (c.variant == Variant::kMca || c.variant == Variant::kMcsa) {
    const int64_t h = std::max<int64_t>(1, d / c.se_reduction);
    total += d * area + d * h + h * d + d * area;
  }
  if (c.variant == Variant::kMsa || c.variant == Variant::kMcsa) {
    total += d * area + c.spatial_kernel * c.spatial_kernel * 2 * area + d * area;
  }
  return total + d * area + d * 7;
}
}  // namespace

TEST(Params, PaperVgg16At224) {
  // The 13 convolutions of a 1-channel VGG16, K^2 * I * O and K^2 * I * O * H * W.
  const int layers[5] = {2, 2, 3, 3, 3};
  const int64_t ch[5] = {64, 128, 256, 512, 512};
  int64_t params = 0, macs = 0, in = 1;
  for (int b = 0; b < 5; ++b) {
    const int64_t side = 224 >> b;
    for (int l = 0; l < layers[b]; ++l) {
      params += 9 * in * ch[b];
      macs += 9 * in * ch[b] * side * side;
      in = ch[b];
    }
  }
  EXPECT_EQ(params, 14709312);  // 14.71 M
  ModelConfig c;
  c.variant = Variant::kVgg16;
  c.input_size = 224;
  const auto s = summarize(c);
  EXPECT_EQ(s.backbone_conv_params, params);
  EXPECT_EQ(s.backbone_conv_macs, macs);
  EXPECT_NEAR(static_cast<double>(s.backbone_conv_macs) / 15.29e9, 1.0, 0.01);
  EXPECT_NEAR(static_cast<double>(s.total_params) / 14.71e6, 1.0, 0.01);
  EXPECT_NEAR(static_cast<double>(s.total_macs) / 15.29e9, 1.0, 0.01);
  EXPECT_EQ(s.total_params, expected_params(c));
  EXPECT_EQ(s.total_macs, expected_macs(c));
}

TEST(Params, PaperSizeMcsaAt224MatchesTheMacFormula) {
  ModelConfig c;
  c.variant = Variant::kMcsa;
  c.input_size = 224;
  const auto s = summarize(c);
  EXPECT_EQ(s.total_params, expected_params(c));
  EXPECT_EQ(s.total_macs, expected_macs(c));
}

class ParamTest : public ::testing::TestWithParam<std::tuple<Variant, double, int>> {};

TEST_P(ParamTest, MatchesFormula) {
  ModelConfig c;
  c.variant = std::get<0>(GetParam());
  c.width = std::get<1>(GetParam());
  c.multiscale = std::get<2>(GetParam());
  c.input_size = 48;
  const auto s = summarize(c);
  EXPECT_EQ(s.total_params, expected_params(c));
  int64_t rows = 0;
  for (const auto& l : s.layers) rows += l.params;
  EXPECT_EQ(rows, s.total_params) << "a layer's parameters are missing from the table";
  EXPECT_GT(s.total_macs, s.backbone_conv_macs);
  EXPECT_EQ(s.total_macs, expected_macs(c));
}

INSTANTIATE_TEST_SUITE_P(Family, ParamTest,
                         ::testing::Combine(::testing::Values(Variant::kVgg16, Variant::kM, Variant::kMca,
                                                              Variant::kMsa, Variant::kMcsa),
                                            ::testing::Values(1.0, 0.5, 0.25), ::testing::Values(-1, 0, 1)),
                         [](const auto& info) {
                           const int ms = std::get<2>(info.param);
                           return std::string(to_string(std::get<0>(info.param))) + "_w" +
                                  std::to_string(static_cast<int>(std::get<1>(info.param) * 100)) +
                                  (ms < 0 ? "_auto" : ms ? "_multiscale" : "_plain");
                         });

TEST(Params, MacsScaleWithInputArea) {
  ModelConfig c;
  c.variant = Variant::kVgg16;
  c.width = 0.25;
  c.input_size = 48;
  const auto a = summarize(c);
  c.input_size = 96;
  const auto b = summarize(c);
  EXPECT_EQ(b.backbone_conv_macs, 4 * a.backbone_conv_macs);
  EXPECT_EQ(a.total_params, b.total_params);
}
