// The paper-size configuration (mcsa, width 1.0, input 224) trains through the real data path:
// a tiny subset of a synthetic FER2013 CSV, upscaled 48 -> 224 by the loader, trained by the
// Trainer for a few epochs; its loss falls. Also: the offline 15x expansion of a training set,
// and the device names `--device` accepts.
#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "fervid/augment.h"
#include "fervid/model_io.h"
#include "fervid/train_step.h"
#include "fervid/trainer.h"
#include "test_train_data.h"
#include "test_util.h"

using namespace fervid;

namespace {

class PaperSize : public fervid::test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    ::setenv("FERVID_CACHE", path("cache").c_str(), 1);
  }
};

}  // namespace

TEST_F(PaperSize, McsaWidth1Input224LossFalls) {
  fervid::test::write_synthetic_fer2013(dir_ / "fer.csv", /*per_class_train=*/4, /*per_class_test=*/0);
  TrainConfig c;
  c.data = path("fer.csv");
  c.run_dir = path("run");
  c.max_train_samples = 8;  // a seeded subset of the 28 training rows
  c.model.variant = Variant::kMcsa;
  c.model.width = 1.0;
  c.model.input_size = 224;  // the loader upscales FER2013's 48x48 bilinearly
  c.model.dropout = 0.0;     // nothing random between epochs but the optimiser's work
  c.loss.lambda_c = 0.001;
  c.loss.gamma = 0.01;
  c.loss.form = SeparationForm::kDda;
  c.augment = AugmentOptions::none();
  // One batch of all 8 images: every epoch is one SGD step on the same batch, so without
  // learning its cross-entropy would repeat to ~1e-6 (measured with lr 1e-9: 1.951982 three
  // times). lr 0.1 rather than the paper's 0.01 (batch 32): at 0.01 two steps move it by 0.008.
  c.batch_size = 8;
  c.lr = 0.1;
  c.epochs = 3;
  c.seed = 4;
  c.device = "cpu";
  const auto t0 = std::chrono::steady_clock::now();
  const auto result = train(c);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(result.epochs.size(), 3u);
  std::ostringstream trace;
  for (const auto& e : result.epochs) {
    EXPECT_EQ(e.train_samples, 8) << "epoch " << e.epoch;
    ASSERT_TRUE(std::isfinite(e.train_loss)) << "epoch " << e.epoch;
    trace << " [" << e.train_loss << ", ce " << e.train_ce << "]";
  }
  std::cout << "paper-size run (total, ce per epoch):" << trace.str() << " in " << seconds << " s\n";
  // Cross-entropy depends on the network alone: it falls at every step (measured: 1.952, 1.927,
  // 1.891). The total also holds the center term, which falls whatever the optimiser does (the
  // centers move to the embeddings: -0.004 over these epochs with lr 1e-9); it must fall far more.
  for (size_t e = 1; e < result.epochs.size(); ++e) {
    EXPECT_LT(result.epochs[e].train_ce, result.epochs[e - 1].train_ce - 0.01) << trace.str();
  }
  EXPECT_LT(result.epochs.back().train_loss, result.epochs.front().train_loss - 0.04) << trace.str();
  // The run is the paper's architecture: its saved model says so.
  const auto cfg = read_model_config(path("run/last.fervid"));
  EXPECT_EQ(cfg.variant, Variant::kMcsa);
  EXPECT_EQ(cfg.width, 1.0);
  EXPECT_EQ(cfg.input_size, 224);
}

TEST(Expand15x, FifteenVariantsPerSampleAsGrayLevels) {
  Dataset d;
  d.height = d.width = 16;
  std::vector<uint8_t> img(256);
  for (int s = 0; s < 3; ++s) {
    for (int p = 0; p < 256; ++p) img[static_cast<size_t>(p)] = static_cast<uint8_t>((p % 16) * 15 + s * 7);  // a horizontal ramp
    d.add(img.data(), s + 2, Split::kTraining, "row" + std::to_string(s), 40 + s);
  }
  const auto x = expand_dataset_15x(d, {2, 0});
  ASSERT_EQ(x.size(), 30u);
  EXPECT_NO_THROW(x.check_consistent());
  for (size_t v = 0; v < 15; ++v) {
    EXPECT_EQ(x.labels[v], 4) << v;  // sample 2's variants first
    EXPECT_EQ(x.labels[15 + v], 2) << v;
    EXPECT_EQ(x.subjects[v], 42);
    EXPECT_EQ(x.origins[15 + v], "row0#x15-" + std::to_string(v));
  }
  // Variant 0 is the image itself; variant 5 (mirror, no rotation) is its mirror image.
  EXPECT_TRUE(std::equal(x.image(0), x.image(0) + 256, d.image(2)));
  EXPECT_TRUE(std::equal(x.image(15), x.image(15) + 256, d.image(0)));
  for (int r = 0; r < 16; ++r)
    for (int c = 0; c < 16; ++c) {
      const int got = x.image(5)[r * 16 + c], want = d.image(2)[r * 16 + (15 - c)];
      ASSERT_LE(std::abs(got - want), 1) << "mirror at " << r << "," << c;
    }
  // The rotated variants differ from the image.
  for (size_t v = 1; v < 5; ++v) EXPECT_FALSE(std::equal(x.image(v), x.image(v) + 256, d.image(2))) << v;
  EXPECT_THROW(expand_dataset_15x(d, {3}), std::out_of_range);
}

TEST(Device, NamesResolveAndCudaFailsClearlyWhereThereIsNone) {
  EXPECT_EQ(resolve_device("cpu"), torch::Device(torch::kCPU));
  EXPECT_EQ(resolve_device("auto").is_cuda(), torch::cuda::is_available());
  auto message = [](const std::string& name) {
    try {
      resolve_device(name);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(message("tpu").find("device 'tpu'"), std::string::npos) << message("tpu");
  EXPECT_NE(message("cuda:x").find("cuda:x"), std::string::npos);
  if (torch::cuda::is_available()) {
    EXPECT_TRUE(resolve_device("cuda").is_cuda());
  } else {
    EXPECT_NE(message("cuda").find("CUDA is not available"), std::string::npos) << message("cuda");
    EXPECT_NE(message("cuda:0").find("CUDA is not available"), std::string::npos);
  }
}
