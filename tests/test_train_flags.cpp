// The training flags (tools/fervid/train_flags.h) parsed in-process: flags and a config file
// resolve to the same configuration, flags override the file, bad values name the flag, and
// every flag the CLI has had is still declared.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "train_flags.h"

using namespace fervid;
namespace fs = std::filesystem;

namespace {

// `args` parsed as `fervid train` would, then resolved (std::invalid_argument from the table).
TrainConfig resolve(const std::string& args) {
  CLI::App app;
  cli::TrainFlags flags;
  flags.add_to(&app);
  app.parse(args, /*program_name_included=*/false);
  return flags.resolve(cli::GlobalOptions{});
}

std::string resolve_error(const std::string& args) {
  try {
    resolve(args);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

class TrainFlagsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    file_ = fs::temp_directory_path() / ("fervid_train_flags_" + std::to_string(::getpid()) + "_" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".json");
  }
  void TearDown() override { fs::remove(file_); }
  std::string write_config(const nlohmann::json& j) const {
    std::ofstream(file_) << j.dump(2);
    return file_.string();
  }
  fs::path file_;
};

}  // namespace

// The bug this table removes: width was 0.25 from flags but 1.0 from a file without "model".
TEST_F(TrainFlagsTest, AConfigFileWithoutAModelSectionResolvesAsTheSameFlags) {
  const auto from_flags = resolve("--data fer.csv --out run --epochs 3 --lr 0.02 --seed 5 --separation dda "
                                  "--gamma 0.1 --erase 0.3 --val-split PrivateTest --batch 16 --min-scale 0.8 "
                                  "--max-scale 1.25 --max-shift 0.12");
  const auto path = write_config({{"data", "fer.csv"},
                                  {"run_dir", "run"},
                                  {"epochs", 3},
                                  {"lr", 0.02},
                                  {"seed", 5},
                                  {"loss", {{"form", "dda"}, {"gamma", 0.1}}},
                                  {"augment", {{"erase_prob", 0.3}, {"min_scale", 0.8}, {"max_scale", 1.25}, {"max_shift", 0.12}}},
                                  {"val_split", "PrivateTest"},
                                  {"batch_size", 16}});
  const auto from_file = resolve("--config " + path);
  EXPECT_EQ(to_json(from_flags), to_json(from_file));
  EXPECT_DOUBLE_EQ(from_file.model.width, 0.25);
  EXPECT_DOUBLE_EQ(from_flags.augment.min_scale, 0.8);
  EXPECT_DOUBLE_EQ(from_flags.augment.max_shift, 0.12);
  // No flag at all: TrainConfig{}'s values.
  TrainConfig defaults;
  defaults.data = "fer.csv";
  EXPECT_EQ(to_json(resolve("--data fer.csv")), to_json(defaults));
}

TEST_F(TrainFlagsTest, FlagsOverrideTheConfigFile) {
  const auto path = write_config({{"data", "fer.csv"}, {"lr", 0.05}, {"model", {{"width", 0.5}}}, {"threads", 2}});
  const auto c = resolve("--config " + path + " --lr 0.1 --no-augment --erase 0.3");
  EXPECT_DOUBLE_EQ(c.lr, 0.1);
  EXPECT_DOUBLE_EQ(c.model.width, 0.5) << "the file's";
  EXPECT_EQ(c.threads, 2) << "the file's, over the global --threads";
  EXPECT_DOUBLE_EQ(c.augment.flip_prob, 0.0) << "--no-augment";
  EXPECT_DOUBLE_EQ(c.augment.erase_prob, 0.3) << "--erase after --no-augment";
  const auto switches = resolve("--data fer.csv --expand-15x --soft-targets --multiscale off --variant vgg16");
  EXPECT_TRUE(switches.expand_15x);
  EXPECT_TRUE(switches.source.soft_targets);
  EXPECT_EQ(switches.model.multiscale, 0);
  EXPECT_EQ(switches.model.variant, Variant::kVgg16);
}

TEST_F(TrainFlagsTest, ABadFlagNamesTheFlag) {
  EXPECT_EQ(resolve_error("--data fer.csv --lr -1"), "--lr must be > 0, got -1");
  // strtod reads "inf" and "nan"; no option means them (the issue: --lr inf trained to NaN).
  EXPECT_EQ(resolve_error("--data fer.csv --lr inf"), "--lr must be a number, got inf");
  EXPECT_EQ(resolve_error("--data fer.csv --lr nan"), "--lr must be a number, got nan");
  EXPECT_EQ(resolve_error("--data fer.csv --width 9"), "--width must be in (0, 4], got 9");
  EXPECT_EQ(resolve_error("--data fer.csv --batch 1.5"), "--batch must be an integer, got 1.5");
  EXPECT_EQ(resolve_error("--data fer.csv --optimizer adam"), "--optimizer must be sgd or adamw, got adam");
  EXPECT_EQ(resolve_error("--data fer.csv --folds 5 --fold 5"), "--fold must be an integer in [0, folds) = [0, 5), got 5");
  EXPECT_EQ(resolve_error("--data fer.csv --min-scale 1.2"), "--min-scale must be in (0, augment.max_scale], got 1.2");
  EXPECT_EQ(resolve_error("--data fer.csv --seed 18446744073709551615"), "") << "a 64-bit seed is read exactly";
  EXPECT_EQ(resolve("--seed 18446744073709551615").seed, 18446744073709551615ull);
}

TEST_F(TrainFlagsTest, ABadValueInTheConfigFileNamesTheFileAndField) {
  const auto path = write_config({{"data", "fer.csv"}, {"loss", {{"center_alpha", 2}}}});
  EXPECT_EQ(resolve_error("--config " + path),
            path + ": train config: field 'loss.center_alpha' must be in [0, 1], got 2");
}

TEST_F(TrainFlagsTest, EveryFlagOfTheCommandIsStillDeclared) {
  CLI::App app;
  cli::TrainFlags flags;
  flags.add_to(&app);
  for (const char* flag :
       {"--config", "--out", "--data", "--format", "--ferplus", "--ferplus-rule", "--strict", "--soft-targets",
        "--train-split", "--val-split", "--val-fraction", "--folds", "--fold", "--max-train-samples", "--expand-15x",
        "--variant", "--width", "--input", "--multiscale", "--reduction", "--dropout", "--init-from", "--lambda-c",
        "--gamma", "--separation", "--label-smoothing", "--center-alpha", "--optimizer", "--lr", "--momentum",
        "--weight-decay", "--schedule", "--lr-decay", "--step-every", "--step-gamma", "--warmup", "--batch", "--epochs",
        "--minutes", "--no-augment", "--erase", "--rotation", "--min-scale", "--max-scale", "--max-shift", "--seed", "--device", "--margin", "--align",
        "--frames-per-sequence", "--first-frame-neutral"}) {
    EXPECT_NO_THROW(app.get_option(flag)) << flag;
  }
}
