// What a library caller of train() and run_ablation() gets besides the weights: the temperature
// fitted on the validation split at the end of a run (none on a test split), the curves, and
// ablation arms reused only when their configuration is the same. Small runs on synthetic data.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "fervid/ablation.h"
#include "fervid/data_source.h"
#include "fervid/eval_run.h"
#include "fervid/model_io.h"
#include "fervid/train_options.h"
#include "fervid/trainer.h"
#include "test_train_data.h"
#include "test_util.h"

using namespace fervid;
namespace fs = std::filesystem;

namespace {

class TrainRunLibrary : public test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    ::setenv("FERVID_CACHE", path("cache").c_str(), 1);
    test::write_synthetic_fer2013(dir_ / "fer.csv", /*per_class_train=*/2, /*per_class_test=*/2);
  }
  // Two epochs of a small network on 14 training images, validated on PublicTest's 14.
  TrainConfig small_run(const std::string& name) const {
    TrainConfig c;
    c.data = path("fer.csv");
    c.run_dir = path(name);
    c.model.width = 0.125;
    c.model.input_size = 32;
    c.batch_size = 14;
    c.epochs = 2;
    c.lr = 0.02;
    c.seed = 3;
    c.threads = 2;
    c.device = "cpu";
    return c;
  }
};

nlohmann::json read_json(const fs::path& p) {
  std::ifstream in(p);
  return nlohmann::json::parse(in);
}

}  // namespace

TEST_F(TrainRunLibrary, TheEndOfARunCalibratesBestOnItsValidationSplit) {
  const auto c = small_run("run");
  const auto result = train(c);
  ASSERT_EQ(result.epochs.size(), 2u);
  ASSERT_TRUE(result.calibrated);
  const auto model = load_model(c.run_dir + "/best.fervid");
  EXPECT_EQ(model.calibration.fit.value("split", ""), "split PublicTest") << model.calibration.to_json();
  EXPECT_EQ(model.calibration.fit.value("samples", 0), 14);
  // Where the samples came from, and which checkpoint was fitted.
  EXPECT_EQ(model.calibration.fit.value("data", ""), c.data);
  EXPECT_FALSE(model.calibration.fit.value("data_key", "").empty());
  EXPECT_EQ(model.calibration.fit.value("epoch", -1), result.best_epoch);
  EXPECT_DOUBLE_EQ(model.calibration.temperature, result.calibration.temperature);
  EXPECT_GE(model.calibration.temperature, kMinTemperature);
  EXPECT_LE(model.calibration.temperature, kMaxTemperature);
  // The fit minimises the NLL, so it is no worse than at temperature 1.
  EXPECT_LE(model.calibration.fit.at("nll_after").get<double>(), model.calibration.fit.at("nll_before").get<double>() + 1e-9);
  const auto record = read_json(fs::path(c.run_dir) / "calibration.json");
  EXPECT_DOUBLE_EQ(record.at("temperature").get<double>(), model.calibration.temperature);
  EXPECT_EQ(record.at("model"), "best.fervid");
  for (const char* k : {"nll_before", "nll_after", "ece_before", "ece_after"}) EXPECT_TRUE(record.contains(k)) << k;
#ifdef FERVID_WITH_OPENCV
  EXPECT_TRUE(fs::exists(fs::path(c.run_dir) / "curves.png")) << "train() draws the curves itself";
#endif
}

// A learning rate that blows up (the step schedule multiplies it by 1e32 after epoch 1; weight
// decay then overflows the weights to infinity in two steps) makes the loss NaN in epoch 2: the
// run stops with an error that says so, and what is on disk is epoch 1's, loadable and finite.
TEST_F(TrainRunLibrary, ADivergedRunStopsAndKeepsItsLastGoodEpoch) {
  auto c = small_run("diverges");
  c.batch_size = 2;  // 7 steps an epoch
  c.schedule = "step";
  c.step_every = 1;
  c.step_gamma = 1e32;
  try {
    train(c);
    FAIL() << "a run whose learning rate is 2e30 trained to its end";
  } catch (const TrainingDiverged& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("diverged"), std::string::npos) << m;
    EXPECT_NE(m.find("at epoch 2"), std::string::npos) << m;
    EXPECT_NE(m.find("checkpoint-0"), std::string::npos) << m;
    EXPECT_NE(m.find("--lr"), std::string::npos) << m;
  }
  const auto pointer = read_json(fs::path(c.run_dir) / "checkpoint.json");
  EXPECT_EQ(pointer.at("epoch"), 0);
  for (const char* f : {"best.fervid", "last.fervid", "checkpoint-0/model.fervid"}) {
    EXPECT_NO_THROW(load_model(c.run_dir + "/" + f)) << f << " is epoch 1's, with finite weights";
  }
  std::ifstream lines(fs::path(c.run_dir) / "metrics.jsonl");
  std::string line;
  int n = 0;
  while (std::getline(lines, line)) ++n;
  EXPECT_EQ(n, 1) << "the diverged epoch is not recorded";
  // A schedule that takes the rate past float's range is refused before any work.
  c.run_dir = path("beyond-float");
  c.epochs = 3;  // epoch 3: 2e62
  try {
    train(c);
    FAIL() << "a learning rate of 2e62 was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("at epoch 3"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(c.run_dir)) << "nothing written";
}

// Every file of a checkpoint is checked against the sha256 it was written with: a flipped byte
// or a truncation is named on resume, not resumed from or reported as a libtorch trace.
TEST_F(TrainRunLibrary, ACheckpointFileThatChangedIsNamedOnResume) {
  const auto c = small_run("run");
  train(c);
  const auto pointer = read_json(fs::path(c.run_dir) / "checkpoint.json");
  const fs::path dir = fs::path(c.run_dir) / pointer.at("dir").get<std::string>();
  EXPECT_NO_THROW(resume_training(c.run_dir)) << "an intact checkpoint resumes (here: a finished run, nothing to do)";
  for (const char* f : {"optimizer.pt", "loss.pt", "model.fervid"}) {
    const fs::path p = dir / f;
    std::string bytes;
    {
      std::ifstream in(p, std::ios::binary);
      bytes.assign(std::istreambuf_iterator<char>(in), {});
    }
    ASSERT_GT(bytes.size(), 64u) << p;
    for (const bool truncate : {false, true}) {
      std::string changed = bytes;
      if (truncate) {
        changed.resize(changed.size() / 2);
      } else {
        changed[changed.size() / 2] = static_cast<char>(changed[changed.size() / 2] ^ 0x10);
      }
      std::ofstream(p, std::ios::binary | std::ios::trunc) << changed;
      try {
        resume_training(c.run_dir);
        ADD_FAILURE() << p << (truncate ? " truncated" : " with a flipped bit") << " was resumed from";
      } catch (const std::exception& e) {
        const std::string m = e.what();
        EXPECT_NE(m.find(p.string()), std::string::npos) << m;
        EXPECT_NE(m.find("sha256"), std::string::npos) << m;
      }
    }
    std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
  }
  fs::remove(dir / "loss.pt");
  try {
    resume_training(c.run_dir);
    ADD_FAILURE() << "a checkpoint without loss.pt was resumed from";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("loss.pt is missing"), std::string::npos) << e.what();
  }
}

// A run folder is locked while it trains: a second process resuming it is refused.
TEST_F(TrainRunLibrary, ARunFolderInUseIsNotResumedTwice) {
  const auto c = small_run("run");
  train(c);
  // Another fervid holds the run (flock locks are per open file, so this descriptor counts as one).
  const int fd = ::open((c.run_dir + "/run.lock").c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
  try {
    resume_training(c.run_dir);
    ADD_FAILURE() << "a locked run was resumed";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("is in use by another fervid"), std::string::npos) << e.what();
  }
  ::close(fd);
  EXPECT_NO_THROW(resume_training(c.run_dir)) << "the lock ends with its holder";
}

// --out never writes a run into a folder of other files, nor over a file.
TEST_F(TrainRunLibrary, OutRefusesAFolderThatIsNotARun) {
  auto c = small_run("photos");
  fs::create_directories(c.run_dir);
  std::ofstream(c.run_dir + "/holiday.jpg") << "not touched";
  try {
    train(c);
    ADD_FAILURE() << "a run was written into a folder of other files";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("is a folder of other files (e.g. 'holiday.jpg'), not a run"),
              std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(fs::exists(c.run_dir + "/config.json"));
  c.run_dir = path("file");
  std::ofstream(c.run_dir) << "x";
  EXPECT_THROW(train(c), std::invalid_argument);
  c.run_dir = path("empty");
  fs::create_directories(c.run_dir);
  EXPECT_NO_THROW(train(c)) << "an empty folder is fine";
}

TEST_F(TrainRunLibrary, ARunWithLogitAdjustmentTrainsAndRecordsTau) {
  auto c = small_run("adjusted");
  c.epochs = 1;
  c.loss.logit_adjust = 1.0;
  const auto result = train(c);
  ASSERT_EQ(result.epochs.size(), 1u);
  EXPECT_TRUE(std::isfinite(result.epochs[0].train_loss));
  EXPECT_DOUBLE_EQ(read_json(fs::path(c.run_dir) / "config.json").at("loss").at("logit_adjust").get<double>(), 1.0);
  // Part of the run's identity only when on.
  EXPECT_TRUE(run_identity(c).contains("loss"));
  EXPECT_TRUE(run_identity(c)["loss"].contains("logit_adjust"));
  c.loss.logit_adjust = 0;
  EXPECT_FALSE(run_identity(c)["loss"].contains("logit_adjust"));
}

// Distillation: a student trains on a teacher's logits; a teacher that takes other input is refused.
TEST_F(TrainRunLibrary, AStudentDistilsATeacherOfTheSameInput) {
  auto teacher = small_run("teacher");
  teacher.epochs = 1;
  teacher.model.width = 0.25;
  train(teacher);
  auto c = small_run("student");
  c.epochs = 1;
  c.teacher = teacher.run_dir + "/best.fervid";
  c.loss.distill_weight = 0.5;
  const auto result = train(c);
  ASSERT_EQ(result.epochs.size(), 1u);
  EXPECT_TRUE(std::isfinite(result.epochs[0].train_loss));
  EXPECT_EQ(run_identity(c).value("teacher", ""), c.teacher);
  auto other_input = small_run("student48");
  other_input.model.input_size = 48;
  other_input.teacher = c.teacher;
  other_input.loss.distill_weight = 0.5;
  try {
    train(other_input);
    ADD_FAILURE() << "a teacher of 32 px input taught a 48 px student";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("takes 32 px input, the student 48"), std::string::npos) << e.what();
  }
  // A teacher without a weight, or a weight without a teacher: refused, naming the field.
  auto lone = small_run("lone");
  lone.teacher = c.teacher;
  try {
    validate_train_config(lone);
    ADD_FAILURE() << "a teacher without distill_weight was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("teacher"), std::string::npos) << e.what();
  }
}

// The paper's mixed training set: a second source's samples only train.
TEST_F(TrainRunLibrary, ExtraTrainingDataOnlyTrains) {
  test::write_synthetic_fer2013(dir_ / "extra.csv", /*per_class_train=*/1, /*per_class_test=*/1, /*seed=*/9);
  auto c = small_run("extra");
  c.epochs = 1;
  c.extra_train_data = path("extra.csv");
  const auto opened = open_run_data(c);
  const auto plain = open_run_data(small_run("plain"));
  const auto extra_rows = open_data_source(path("extra.csv")).data.size();
  ASSERT_EQ(opened.data.size(), plain.data.size() + extra_rows);
  const auto s = run_splits(c, opened.data);
  const auto s_plain = run_splits(small_run("plain"), plain.data);
  EXPECT_EQ(s.val, s_plain.val) << "no extra sample is validated on";
  EXPECT_EQ(s.train.size(), s_plain.train.size() + extra_rows) << "every extra sample, test rows included, trains";
  EXPECT_NE(opened.cache_key, plain.cache_key);
  c.batch_size = 7;  // 14 + 21 samples: whole batches, so every one trains in the epoch
  const auto result = train(c);
  EXPECT_EQ(result.epochs.at(0).train_samples, static_cast<int64_t>(s.train.size()));
  EXPECT_TRUE(run_identity(c).contains("extra_train_data"));
  EXPECT_FALSE(run_identity(small_run("plain")).contains("extra_train_data"));
  // Folds would put extra samples among the validated ones: refused, naming the field.
  c.folds = 5;
  try {
    validate_train_config(c);
    ADD_FAILURE() << "extra data with folds was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("extra_train_data"), std::string::npos) << e.what();
  }
}

// `fervid eval` as a library call: the run's data read as it was trained, the report written.
TEST_F(TrainRunLibrary, RunEvalScoresASplitAndWritesTheReport) {
  auto c = small_run("for-eval");
  c.epochs = 1;
  train(c);
  EvalRequest r;
  r.model = c.run_dir + "/best.fervid";
  r.data = c.data;
  r.split = "PublicTest";
  r.out = path("eval-public");
  r.device = "cpu";
  const auto run = run_eval(r);
  EXPECT_EQ(run.protocol, "split PublicTest");
  EXPECT_EQ(run.metrics.samples, 14);
  EXPECT_EQ(run.out, r.out);
  EXPECT_DOUBLE_EQ(run.temperature, load_model(r.model).calibration.temperature) << "the file's calibration";
  EXPECT_FALSE(run.end_to_end) << "a CSV holds cropped faces";
  ASSERT_FALSE(run.files.empty());
  const auto report = read_json(run.files.front());
  EXPECT_EQ(report.at("protocol"), "split PublicTest");
  EXPECT_TRUE(report.at("as_trained").get<bool>());
  EXPECT_DOUBLE_EQ(report.at("metrics").at("accuracy").get<double>(), run.metrics.accuracy);
#ifdef FERVID_WITH_OPENCV
  EXPECT_EQ(run.files.size(), 4u) << "report.json and three PNGs";
  for (const auto& f : run.files) EXPECT_TRUE(fs::exists(f)) << f;
#endif
  r.temperature = 2.0;
  r.split = "Training";
  r.out = path("eval-train");
  const auto t2 = run_eval(r);
  EXPECT_DOUBLE_EQ(t2.report.at("temperature").get<double>(), 2.0);
  EXPECT_EQ(t2.metrics.samples, 14);
  r.whole_image = true;
  r.format = "fer2013";
  EXPECT_THROW(run_eval(r), std::invalid_argument) << "--whole-image is for folders of crops";
}

TEST(EndToEnd, AnImageWithoutAFaceIsAWrongAnswerOfItsClass) {
  EvalMetrics faces;
  faces.samples = 6;
  faces.per_class.resize(7);
  faces.per_class[0].support = 4;  // angry: 3 of 4 found faces right
  faces.per_class[0].recall = 0.75;
  faces.per_class[3].support = 2;  // happy: 2 of 2
  faces.per_class[3].recall = 1.0;
  ReadReport missed;
  missed.issues.push_back({"xds/angry/a.png", "face", "no face found"});
  missed.issues.push_back({"xds/happy/b.png", "face", "no face found"});
  missed.issues.push_back({"xds/happy/c.png", "face", "no face found"});
  missed.issues.push_back({"xds/happy/d.png", "image", "not an image"});  // not a detection miss
  const auto e = end_to_end_metrics(faces, missed, 7);
  EXPECT_EQ(e.images, 9);
  EXPECT_EQ(e.no_face, 3);
  EXPECT_EQ(e.no_face_per_class[0], 1);
  EXPECT_EQ(e.no_face_per_class[3], 2);
  EXPECT_DOUBLE_EQ(e.accuracy, 5.0 / 9);
  EXPECT_DOUBLE_EQ(e.uar, (3.0 / 5 + 2.0 / 4) / 2);
}

TEST_F(TrainRunLibrary, ARunValidatedOnATestSplitIsNotCalibrated) {
  auto c = small_run("private");
  c.val_split = "PrivateTest";
  c.epochs = 1;
  const auto result = train(c);
  EXPECT_FALSE(result.calibrated);
  const auto model = load_model(c.run_dir + "/best.fervid");
  EXPECT_DOUBLE_EQ(model.calibration.temperature, 1.0);
  EXPECT_TRUE(model.calibration.fit.empty()) << model.calibration.to_json();
  EXPECT_FALSE(fs::exists(fs::path(c.run_dir) / "calibration.json"));
}

TEST_F(TrainRunLibrary, AnAblationArmIsReusedOnlyWithTheSameConfiguration) {
  AblationOptions o;
  o.base = small_run("unused");
  o.base.epochs = 1;
  const auto arms = select_ablation_arms(default_ablation_arms(o.base.loss, 0.01, {0.1}, {1}), "vgg16");
  const auto out = path("ablate");
  int epochs_trained = 0;
  AblationCallbacks cb;
  cb.train.epoch_end = [&](const std::string&, const std::vector<EpochMetrics>&) { ++epochs_trained; };

  auto report = run_ablation(o, arms, out, "", cb);
  ASSERT_EQ(report.rows.size(), 1u);
  EXPECT_EQ(epochs_trained, 1);
  for (const char* f : {"ablation.json", "ablation.md"}) EXPECT_TRUE(fs::exists(fs::path(out) / f)) << f;
#ifdef FERVID_WITH_OPENCV
  EXPECT_TRUE(fs::exists(fs::path(out) / "ablation.png"));
#endif
  const auto result = fs::path(out) / "vgg16" / "result.json";
  EXPECT_EQ(read_json(result).at("identity_sha256").get<std::string>().size(), 64u);

  // The same configuration (threads and device do not count): the arm is reused, not retrained.
  o.base.threads = 1;
  report = run_ablation(o, arms, out, "", cb);
  EXPECT_EQ(epochs_trained, 1) << "retrained an arm of the same configuration";
  EXPECT_EQ(report.rows.at(0).metrics.accuracy, read_json(result).at("accuracy").get<double>());

  // Another learning rate: refused, naming the arm and the field.
  auto other = o;
  other.base.lr = 0.05;
  try {
    run_ablation(other, arms, out, "", cb);
    ADD_FAILURE() << "an arm of another configuration was reused";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("arm 'vgg16'"), std::string::npos) << what;
    EXPECT_NE(what.find("train.lr (0.02 vs 0.05)"), std::string::npos) << what;
  }
  other = o;
  other.test_split = "PublicTest";
  EXPECT_THROW(run_ablation(other, arms, out, "", cb), std::runtime_error) << "scored on another split";

  // A result of an older build records no identity: the arm's config.json stands for it.
  auto stored = read_json(result);
  stored.erase("identity");
  stored.erase("identity_sha256");
  std::ofstream(result) << stored.dump(2);
  EXPECT_NO_THROW(run_ablation(o, arms, out, "", cb));
  other = o;
  other.base.lr = 0.05;
  EXPECT_THROW(run_ablation(other, arms, out, "", cb), std::runtime_error);
  EXPECT_EQ(epochs_trained, 1);
}

TEST_F(TrainRunLibrary, AblationArmsOfTheSameTrainingRunOnce) {
  AblationOptions o;
  o.base = small_run("unused");
  o.base.epochs = 1;
  const auto arms = select_ablation_arms(default_ablation_arms(o.base.loss, 0.01, {0.1}, {1}), "mcsa,ce");
  int epochs_trained = 0;
  AblationCallbacks cb;
  cb.train.epoch_end = [&](const std::string&, const std::vector<EpochMetrics>&) { ++epochs_trained; };
  const auto report = run_ablation(o, arms, path("ablate"), "", cb);
  ASSERT_EQ(report.rows.size(), 2u);
  EXPECT_EQ(epochs_trained, 1);
  EXPECT_EQ(report.rows[1].same_run_as, "mcsa");
  EXPECT_THROW(select_ablation_arms(arms, "mcsa,resnet"), std::invalid_argument);
}
