// `fervid cv` and `fervid ablate` with the fold protocol, end to end on a synthetic CK+48
// folder (12 subjects, 6 classes): the folds partition the samples by subject, both protocols
// write their reports, and an interrupted ablation picks up the finished arms.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <random>

#include "../cli_runner.h"

namespace fs = std::filesystem;
using fervid::test::run;

namespace {

constexpr int kSubjects = 12, kFramesPerClass = 2;
const char* const kClasses[] = {"anger", "disgust", "fear", "happy", "sadness", "surprise"};

class Protocols : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("fervid_protocols_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    ::setenv("FERVID_CACHE", (dir_ / "cache").c_str(), 1);
    data_ = dir_ / "CK+48";
    std::mt19937 rng(11);
    std::normal_distribution<double> noise(0, 20);
    for (int c = 0; c < 6; ++c) {
      fs::create_directories(data_ / kClasses[c]);
      for (int s = 1; s <= kSubjects; ++s) {
        for (int f = 0; f < kFramesPerClass; ++f) {
          cv::Mat img(48, 48, CV_8UC1);
          for (int y = 0; y < 48; ++y)
            for (int x = 0; x < 48; ++x)
              img.at<uchar>(y, x) = cv::saturate_cast<uchar>(((x / 8 + y / 8 + c) % 6) * 35.0 + 10 * s + noise(rng));
          char name[64];
          std::snprintf(name, sizeof(name), "S%03d_%03d_%08d.png", s, c + 1, f + 10);
          ASSERT_TRUE(cv::imwrite((data_ / kClasses[c] / name).string(), img));
        }
      }
    }
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string common() const {
    return " --data " + data_.string() + " --width 0.125 --input 32 --batch 16 --lr 0.02 --seed 2";
  }
  fs::path dir_, data_;
};

}  // namespace

TEST_F(Protocols, CvRunsSubjectFoldsAndTheRandomSplit) {
  const auto out = dir_ / "cv";
  auto r = run("--threads 2 cv" + common() + " --folds 3 --epochs 2 --out " + out.string());
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("subject-independent 3-fold"), std::string::npos) << r.out;
  std::ifstream in(out / "cv.json");
  const auto j = nlohmann::json::parse(in);
  ASSERT_EQ(j["subject_cv"]["accuracies"].size(), 3u);
  ASSERT_EQ(j["random_split"]["accuracies"].size(), 1u);
  for (const auto& a : j["subject_cv"]["accuracies"]) {
    EXPECT_GE(a.get<double>(), 0.0);
    EXPECT_LE(a.get<double>(), 1.0);
  }
  for (int f = 0; f < 3; ++f) EXPECT_TRUE(fs::exists(out / ("fold-" + std::to_string(f)) / "last.fervid")) << f;
  EXPECT_TRUE(fs::exists(out / "random-split" / "last.fervid"));
}

TEST_F(Protocols, AblateWithFoldsScoresEverySampleOnceAndResumes) {
  const auto out = dir_ / "ablate";
  const std::string args = "--threads 2 ablate" + common() + " --folds 3 --epochs 1 --arms vgg16,mcsa,ce --out " + out.string();
  auto r = run(args);
  ASSERT_EQ(r.status, 0) << r.out;
  std::ifstream in(out / "ablation.json");
  const auto j = nlohmann::json::parse(in);
  ASSERT_EQ(j["rows"].size(), 3u);
  for (const auto& row : j["rows"]) {
    EXPECT_EQ(row["fold_accuracies"].size(), 3u) << row["arm"];
    // The held-out folds partition the data: every sample is scored exactly once.
    EXPECT_EQ(row["metrics"]["samples"], 6 * kSubjects * kFramesPerClass) << row["arm"];
  }
  EXPECT_EQ(j["rows"][2]["same_run_as"], "mcsa") << "the loss arm 'ce' is the variant 'mcsa': trained once";
  EXPECT_FALSE(fs::exists(out / "ce"));
  EXPECT_TRUE(fs::exists(out / "ablation.md"));
  EXPECT_TRUE(fs::exists(out / "ablation.png"));

  // Started again: finished arms are read back, not retrained; an arm left without a result
  // (as if killed) is trained again.
  const auto stamp = fs::last_write_time(out / "vgg16" / "result.json");
  fs::remove(out / "mcsa" / "result.json");
  r = run(args);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(fs::last_write_time(out / "vgg16" / "result.json"), stamp);
  EXPECT_TRUE(fs::exists(out / "mcsa" / "result.json"));
  std::ifstream in2(out / "ablation.json");
  const auto j2 = nlohmann::json::parse(in2);
  EXPECT_EQ(j2["rows"][0]["accuracy"], j["rows"][0]["accuracy"]);
  EXPECT_EQ(j2["rows"][1]["accuracy"], j["rows"][1]["accuracy"]) << "same seed, same training";
}

TEST_F(Protocols, AblateRefusesUnknownArmsAndAMissingBudget) {
  auto r = run("ablate" + common() + " --folds 3 --epochs 1 --arms mcsa,resnet --out " + (dir_ / "a").string());
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("unknown arm 'resnet'"), std::string::npos) << r.out;
  r = run("ablate" + common() + " --folds 3 --out " + (dir_ / "b").string());
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("--epochs N or --minutes M"), std::string::npos) << r.out;
}

TEST_F(Protocols, EvalAndCalibrateReadAFoldModelsOwnHeldOutFold) {
  const auto run_dir = dir_ / "fold1";
  auto r = run("--threads 2 train" + common() + " --folds 3 --fold 1 --epochs 1 --out " + run_dir.string());
  ASSERT_EQ(r.status, 0) << r.out;
  const auto model = (run_dir / "last.fervid").string();
  auto report = [&](const std::string& flags) {
    auto e = run("--threads 2 eval --json --model " + model + " --data " + data_.string() + flags + " --out " + (dir_ / "ev").string());
    EXPECT_EQ(e.status, 0) << e.out;
    return nlohmann::json::parse(e.out.substr(e.out.find('{')));
  };
  // Without flags: the run's own fold and seed (2), not seed 1's folds.
  const auto own = report("");
  EXPECT_EQ(own["protocol"], "subject-independent fold 1 of 3 (seed 2)") << own["protocol"];
  EXPECT_TRUE(own["as_trained"].get<bool>());
  const auto given = report(" --folds 3 --fold 1 --seed 2");
  EXPECT_EQ(given["metrics"]["samples"], own["metrics"]["samples"]);
  EXPECT_EQ(given["metrics"]["confusion_matrix"], own["metrics"]["confusion_matrix"]);
  const int64_t fold_size = own["metrics"]["samples"].get<int64_t>();
  EXPECT_GT(fold_size, 0);
  EXPECT_LT(fold_size, 6 * kSubjects * kFramesPerClass);
  EXPECT_EQ(report(" --split all")["metrics"]["samples"].get<int64_t>(), 6 * kSubjects * kFramesPerClass);
  // The temperature is fitted on the same held-out fold, and travels in the file.
  const auto calibrated = (dir_ / "cal.fervid").string();
  r = run("--threads 2 model calibrate " + model + " --data " + data_.string() + " --out " + calibrated);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("fold 1 of 3 (seed 2)"), std::string::npos) << r.out;
  auto c = run("--threads 2 eval --json --model " + calibrated + " --data " + data_.string() + " --out " + (dir_ / "ev2").string());
  ASSERT_EQ(c.status, 0) << c.out;
  const auto cj = nlohmann::json::parse(c.out.substr(c.out.find('{')));
  EXPECT_EQ(cj["model_calibration"]["samples"].get<int64_t>(), fold_size);
  EXPECT_EQ(cj["temperature"], cj["model_calibration"]["temperature"]);
  EXPECT_EQ(cj["metrics"]["confusion_matrix"], own["metrics"]["confusion_matrix"]);  // classes unchanged
}
