// Metrics by hand: accuracy, per-class P/R/F1, macro-F1, UAR, ECE, embedding distances, TTA views.
#include <gtest/gtest.h>

#include <cmath>

#include "fervid/evaluate.h"
#include "test_util.h"

using namespace fervid;

TEST(Evaluate, MetricsByHand) {
  // 3 classes; 5 samples: true [0, 0, 1, 2, 2], predicted [0, 1, 1, 2, 0].
  Predictions p;
  p.labels = torch::tensor({0, 0, 1, 2, 2}, torch::kLong);
  p.probs = torch::tensor({{0.95, 0.03, 0.02}, {0.3, 0.65, 0.05}, {0.2, 0.75, 0.05}, {0.1, 0.05, 0.85}, {0.55, 0.25, 0.2}},
                          torch::kFloat);
  const auto m = compute_metrics(p, 3, 10);
  EXPECT_EQ(m.samples, 5);
  EXPECT_DOUBLE_EQ(m.accuracy, 0.6);
  EXPECT_EQ(m.confusion[0], (std::vector<int64_t>{1, 1, 0}));
  EXPECT_EQ(m.confusion[2], (std::vector<int64_t>{1, 0, 1}));
  // class 0: precision 1/2, recall 1/2; class 1: precision 1/2, recall 1; class 2: precision 1, recall 1/2.
  EXPECT_DOUBLE_EQ(m.per_class[0].precision, 0.5);
  EXPECT_DOUBLE_EQ(m.per_class[1].recall, 1.0);
  EXPECT_NEAR(m.per_class[1].f1, 2.0 / 3.0, 1e-12);
  EXPECT_NEAR(m.macro_f1, (0.5 + 2.0 / 3.0 + 2.0 / 3.0) / 3.0, 1e-12);
  EXPECT_NEAR(m.uar, (0.5 + 1.0 + 0.5) / 3.0, 1e-12);
  // The report round-trips UAR, and a report written before it had the field gets it back
  // from the per-class recalls.
  auto j = to_json(m, {"a", "b", "c"});
  EXPECT_NEAR(eval_metrics_from_json(j).uar, m.uar, 1e-12);
  j.erase("uar");
  EXPECT_NEAR(eval_metrics_from_json(j).uar, m.uar, 1e-12);
  // ECE with 10 bins: confidences 0.95 (right), 0.65 (wrong), 0.75 (right), 0.85 (right), 0.55
  // (wrong), each alone in its bin (mid-bin, away from float edges): mean |acc - conf|.
  EXPECT_NEAR(m.ece, (0.05 + 0.65 + 0.25 + 0.15 + 0.55) / 5, 1e-6);
}

TEST(Evaluate, EmbeddingDistancesByHand) {
  // Class 0 at (0, +-1) around centre (0, 0); class 1 at (4, 0) exactly: intra = (1 + 1 + 0) / 3.
  auto e = torch::tensor({{0.0, 1.0}, {0.0, -1.0}, {4.0, 0.0}}, torch::kFloat);
  auto y = torch::tensor({0, 0, 1}, torch::kLong);
  const auto s = embedding_stats(e, y, 7);
  EXPECT_NEAR(s.intra_mean, 2.0 / 3.0, 1e-6);
  EXPECT_NEAR(s.inter_mean, 4.0, 1e-6);
  EXPECT_NEAR(s.inter_min, 4.0, 1e-6);
  EXPECT_NEAR(s.ratio, 6.0, 1e-5);
  EXPECT_EQ(s.classes, (std::vector<int>{0, 1}));
  const auto p = project_2d(e);
  EXPECT_EQ(p.sizes(), (std::vector<int64_t>{3, 2}));
}

TEST(Evaluate, TtaViews) {
  auto x = torch::rand({2, 1, 48, 48});
  EXPECT_TRUE(torch::equal(tta_views(x, Tta::kNone), x));
  auto f = tta_views(x, Tta::kFlip);
  ASSERT_EQ(f.size(0), 4);
  EXPECT_TRUE(torch::equal(f.narrow(0, 2, 2), x.flip({3})));
  auto t = tta_views(x, Tta::kTenCrop);
  ASSERT_EQ(t.sizes(), (std::vector<int64_t>{20, 1, 48, 48}));
  EXPECT_TRUE(torch::allclose(t.narrow(0, 10, 10), t.narrow(0, 0, 10).flip({3})));  // mirrors of the 5 crops
  // A constant image stays constant in every view.
  auto c = torch::full({1, 1, 48, 48}, 0.25);
  EXPECT_TRUE(torch::allclose(tta_views(c, Tta::kTenCrop), torch::full({10, 1, 48, 48}, 0.25)));
  EXPECT_EQ(parse_tta("flip"), Tta::kFlip);
  EXPECT_THROW(parse_tta("x"), std::invalid_argument);
}

TEST(Evaluate, PredictAveragesViewsAndKeepsOrder) {
  torch::manual_seed(3);
  ModelConfig c;
  c.width = 0.25;
  c.input_size = 32;
  MCSANet net(c);
  Dataset ds;
  ds.height = ds.width = 32;
  std::vector<uint8_t> img(32 * 32);
  for (int i = 0; i < 9; ++i) {
    for (size_t p = 0; p < img.size(); ++p) img[p] = static_cast<uint8_t>((p * (i + 3)) % 256);
    ds.add(img.data(), i % 7, Split::kPrivateTest, "s" + std::to_string(i));
  }
  std::vector<size_t> idx = {8, 0, 4};
  auto p = predict(net, ds, idx, Tta::kFlip, 2);
  EXPECT_EQ(p.probs.sizes(), (std::vector<int64_t>{3, 7}));
  EXPECT_TRUE(torch::allclose(p.probs.sum(1), torch::ones({3}), 1e-5, 1e-5));
  EXPECT_EQ(p.labels[0].item<int64_t>(), 8 % 7);
  EXPECT_EQ(p.embeddings.sizes(), (std::vector<int64_t>{3, c.embedding_dim()}));
  // At a temperature: the softmax of the scaled logits, the same as rescaling afterwards.
  net->eval();
  const auto at1 = predict(net, ds, idx), at2 = predict(net, ds, idx, Tta::kNone, 256, 2.0);
  EXPECT_TRUE(torch::allclose(at2.probs, at_temperature(at1, 2.0).probs, 1e-4, 1e-5));
  EXPECT_FALSE(torch::allclose(at2.probs, at1.probs, 1e-4, 1e-5));
}

namespace {

// N samples of K classes whose labels are drawn from softmax(z / t_true), reported as the
// probabilities softmax(z) (a model whose confidence is off by the factor t_true).
Predictions miscalibrated(double t_true, int64_t n = 6000, int64_t k = 5, uint64_t seed = 11) {
  torch::manual_seed(seed);
  auto z = torch::randn({n, k}, torch::kDouble) * 3.0;
  Predictions p;
  p.labels = torch::multinomial(torch::softmax(z / t_true, 1), 1).squeeze(1);
  p.probs = torch::softmax(z, 1).to(torch::kFloat);
  p.embeddings = torch::zeros({n, 2});
  return p;
}

}  // namespace

TEST(Evaluate, TemperatureFitRecoversTheTemperatureTheLabelsWereDrawnAt) {
  for (double t_true : {0.5, 1.0, 2.5}) {
    const auto p = miscalibrated(t_true);
    const auto fit = fit_temperature(p);
    EXPECT_NEAR(fit.temperature, t_true, 0.12 * t_true) << t_true;
    EXPECT_EQ(fit.samples, 6000);
    EXPECT_NEAR(fit.nll_before, nll_at_temperature(p, 1.0), 1e-12);
    EXPECT_LE(fit.nll_after, fit.nll_before + 1e-12);
    // A minimum: either side is worse.
    EXPECT_LT(fit.nll_after, nll_at_temperature(p, fit.temperature * 1.05));
    EXPECT_LT(fit.nll_after, nll_at_temperature(p, fit.temperature / 1.05));
    if (t_true != 1.0) {
      EXPECT_LT(compute_metrics(at_temperature(p, fit.temperature), 5).ece, compute_metrics(p, 5).ece) << t_true;
    }
  }
}

TEST(Evaluate, ATemperatureChangesConfidenceNotTheClass) {
  const auto p = miscalibrated(2.0, 200);
  const auto q = at_temperature(p, 3.0);
  EXPECT_TRUE(torch::equal(q.probs.argmax(1), p.probs.argmax(1)));
  EXPECT_TRUE(torch::allclose(q.probs.sum(1), torch::ones({200}), 1e-5, 1e-5));
  EXPECT_LT(q.probs.max().item<float>(), p.probs.max().item<float>());  // T > 1 flattens
  EXPECT_TRUE(torch::allclose(at_temperature(p, 1.0).probs, p.probs, 1e-5, 1e-6));
  // NLL by hand for one sample: -log softmax(log p / T)[y].
  Predictions one;
  one.probs = torch::tensor({{0.7, 0.2, 0.1}}, torch::kFloat);
  one.labels = torch::tensor({1}, torch::kLong);
  const double a = std::pow(0.7, 0.5), b = std::pow(0.2, 0.5), c = std::pow(0.1, 0.5);
  EXPECT_NEAR(nll_at_temperature(one, 2.0), -std::log(b / (a + b + c)), 1e-6);
  EXPECT_THROW(nll_at_temperature(one, 0.0), c10::Error);
}
