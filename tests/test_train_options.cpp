// The training option table (train_options.h): config.json written and read through it, every
// recorded run's config still read, errors that name the field, and a run's identity.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "fervid/model_io.h"
#include "fervid/train_options.h"
#include "fervid/trainer.h"

using namespace fervid;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

json read_json(const fs::path& path) {
  std::ifstream in(path);
  return json::parse(in);
}

// The message of the std::invalid_argument that reading `j` throws ("" when it reads).
std::string read_error(const json& j) {
  try {
    train_config_from_json(j);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(TrainOptions, TheTableIsConsistent) {
  std::set<std::string> keys, flags;
  for (const auto& o : train_options()) {
    EXPECT_FALSE(o.key.empty() && o.flag.empty()) << "an option needs a key or a flag";
    EXPECT_FALSE(o.help.empty()) << o.key << o.flag;
    if (!o.key.empty()) {
      EXPECT_TRUE(keys.insert(o.key).second) << "key twice: " << o.key;
      EXPECT_EQ(find_train_option(o.key), &o);
    }
    if (!o.flag.empty()) {
      EXPECT_TRUE(flags.insert(o.flag).second) << "flag twice: " << o.flag;
    }
  }
  // Every field config.json holds is an option, and it reads back what it wrote.
  const auto j = to_json(TrainConfig{});
  const auto flat = j.flatten();
  for (const auto& [path, value] : flat.items()) {
    std::string key = path.substr(1);
    if (key.rfind("source/", 0) == 0 || key.rfind("model/class_names/", 0) == 0) continue;
    std::replace(key.begin(), key.end(), '/', '.');
    EXPECT_NE(find_train_option(key), nullptr) << key;
  }
  EXPECT_EQ(to_json(train_config_from_json(j)), j);
}

// A value given nowhere is TrainConfig{}'s, whether a config file lacks it or no flag gives it:
// the defaults of the CLI (width 0.25) hold for a config file without a "model" section too.
TEST(TrainOptions, AFileWithoutAModelSectionGetsTheDefaults) {
  const auto c = train_config_from_json({{"data", "fer.csv"}, {"lr", 0.05}});
  TrainConfig expected;
  expected.data = "fer.csv";
  expected.lr = 0.05;
  EXPECT_EQ(to_json(c), to_json(expected));
  EXPECT_DOUBLE_EQ(c.model.width, 0.25);
  EXPECT_DOUBLE_EQ(ModelConfig{}.width, 1.0) << "the paper's network stays ModelConfig's default";
  // A partial section keeps the defaults of the fields it lacks.
  const auto partial = train_config_from_json({{"model", {{"input_size", 64}}}});
  EXPECT_EQ(partial.model.input_size, 64);
  EXPECT_DOUBLE_EQ(partial.model.width, 0.25);
}

// config.json of runs made by earlier builds (fields added since: device, expand_15x,
// augment.erase_value, the face recipe in "source") still reads, so those runs resume.
TEST(TrainOptions, ReadsTheConfigOfEveryRecordedRun) {
  const auto v1 = train_config_from_json(read_json(fs::path(FERVID_FIXTURES_DIR) / "train_config_v1.json"));
  EXPECT_DOUBLE_EQ(v1.model.width, 0.25);
  EXPECT_DOUBLE_EQ(v1.model.dropout, 0.3);
  EXPECT_EQ(v1.model.multiscale, 1);
  EXPECT_EQ(v1.schedule, "cosine");
  EXPECT_EQ(v1.batch_size, 64);
  EXPECT_DOUBLE_EQ(v1.augment.erase_prob, 0.2);
  EXPECT_DOUBLE_EQ(v1.augment.erase_value, AugmentOptions{}.erase_value) << "absent then: the default";
  EXPECT_EQ(v1.device, "auto");
  EXPECT_FALSE(v1.expand_15x);
  EXPECT_DOUBLE_EQ(v1.loss.label_smoothing, 0.1);
  EXPECT_EQ(to_json(train_config_from_json(to_json(v1))), to_json(v1));

  // Every run kept in experiments/ (when the checkout has them), and the shipped model's record.
  int read = 0;
  const fs::path experiments = fs::path(FERVID_SOURCE_DIR) / "experiments";
  if (fs::is_directory(experiments)) {
    for (const auto& e : fs::recursive_directory_iterator(experiments)) {
      if (e.path().filename() != "config.json") continue;
      EXPECT_NO_THROW(train_config_from_json(read_json(e.path()))) << e.path();
      ++read;
    }
  }
  const auto shipped = fs::path(FERVID_SOURCE_DIR) / "models" / "fervid-default.fervid";
  if (fs::exists(shipped)) {
    const auto header = read_model_header(shipped.string());
    ASSERT_TRUE(header.metadata.contains("train_config"));
    EXPECT_NO_THROW(train_config_from_json(header.metadata.at("train_config")));
    ++read;
  }
  std::cout << "read " << read << " recorded configurations\n";
}

TEST(TrainOptions, ABadValueInAConfigNamesTheField) {
  EXPECT_EQ(read_error({{"lr", -1}}), "train config: field 'lr' must be > 0, got -1");
  EXPECT_EQ(read_error({{"loss", {{"lambda_c", "a lot"}}}}),
            "train config: field 'loss.lambda_c' must be a number, got \"a lot\"");
  EXPECT_EQ(read_error({{"loss", {{"lamda_c", 0.01}}}}), "train config: field 'loss.lamda_c' is not a training option");
  EXPECT_EQ(read_error({{"loss", 3}}), "train config: field 'loss' is not a JSON object");
  EXPECT_EQ(read_error({{"model", {{"width", 9}}}}), "train config: field 'model.width' must be in (0, 4], got 9");
  EXPECT_EQ(read_error({{"epochs", 2.5}}), "train config: field 'epochs' must be an integer, got 2.5");
  EXPECT_EQ(read_error({{"optimizer", "adam"}}), "train config: field 'optimizer' must be sgd or adamw, got \"adam\"");
  EXPECT_EQ(read_error({{"model", {{"variant", "resnet"}}}}),
            "train config: field 'model.variant' must be vgg16, m, mca, msa or mcsa, got \"resnet\"");
  EXPECT_EQ(read_error({{"folds", 5}, {"fold", 5}}),
            "train config: field 'fold' must be an integer in [0, folds) = [0, 5), got 5");
  EXPECT_NE(read_error({{"source", {{"format", "xyz"}}}}).find("source.format"), std::string::npos)
      << read_error({{"source", {{"format", "xyz"}}}});
  EXPECT_EQ(read_error({{"epochs", 30.0}}), "") << "a whole float is an integer";

  // A config file: the file, then the field.
  const auto path = fs::temp_directory_path() / ("fervid_bad_config_" + std::to_string(::getpid()) + ".json");
  std::ofstream(path) << R"({"data": "fer.csv", "batch_size": 0})";
  try {
    read_train_config_file(path.string());
    ADD_FAILURE() << "a batch of 0 was read";
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()), path.string() + ": train config: field 'batch_size' must be an integer >= 1, got 0");
  }
  fs::remove(path);
}

TEST(TrainOptions, ValidationNamesTheMissingField) {
  TrainConfig c;
  c.run_dir = "run";
  try {
    validate_train_config(c);
    ADD_FAILURE() << "a run without data validated";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("field 'data' is empty"), std::string::npos) << e.what();
  }
  c.data = "fer.csv";
  EXPECT_NO_THROW(validate_train_config(c));
  c.augment.min_scale = 1.2;  // above max_scale 1.1
  EXPECT_THROW(validate_train_config(c), std::invalid_argument);
}

TEST(TrainOptions, TheIdentityLeavesOutWhereAndHowFastARunGoes) {
  TrainConfig a;
  a.data = "fer.csv";
  auto b = a;
  b.run_dir = "elsewhere";
  b.threads = 7;
  b.device = "cpu";
  b.loss.form = SeparationForm::kDda;  // no separation term (gamma 0): no effect
  EXPECT_EQ(run_identity(a), run_identity(b));
  EXPECT_FALSE(run_identity(a).contains("run_dir"));
  b.lr = 0.05;
  EXPECT_EQ(first_json_difference(run_identity(a), run_identity(b)), "lr (0.01 vs 0.05)");
  b = a;
  b.loss.gamma = 0.1;
  EXPECT_EQ(first_json_difference(run_identity(a), run_identity(b)), "loss.form (absent vs \"island\")");
}
