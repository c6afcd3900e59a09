// `fervid train` end to end on a small synthetic FER2013 CSV: the run folder, and a run killed
// with SIGKILL mid-epoch then resumed ends with exactly the metrics of an uninterrupted run.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <iterator>
#include <random>
#include <thread>

#include "cli_runner.h"

namespace fs = std::filesystem;
using fervid::test::run;

namespace {

// 7 classes, each a noisy version of its own pattern, in all three Usage splits.
void write_synthetic_fer(const fs::path& path, int per_class_train, int per_class_test) {
  std::mt19937 rng(5);
  std::normal_distribution<double> noise(0, 30);
  std::ofstream out(path);
  out << "emotion,pixels,Usage\n";
  auto row = [&](int label, const char* usage) {
    out << label << ",";
    for (int p = 0; p < 2304; ++p) {
      const int y = p / 48, x = p % 48;
      const double base = ((x / 8 + y / 8 + label) % 7) * 30.0 + 20 * label;
      out << (p ? " " : "") << std::clamp(static_cast<int>(base + noise(rng)), 0, 255);
    }
    out << "," << usage << "\n";
  };
  for (int i = 0; i < per_class_train; ++i)
    for (int c = 0; c < 7; ++c) row(c, "Training");
  for (int i = 0; i < per_class_test; ++i)
    for (int c = 0; c < 7; ++c) row(c, "PublicTest");
  for (int i = 0; i < per_class_test; ++i)
    for (int c = 0; c < 7; ++c) row(c, "PrivateTest");
}

std::vector<nlohmann::json> metrics(const fs::path& run_dir) {
  std::vector<nlohmann::json> out;
  std::ifstream in(run_dir / "metrics.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    j.erase("seconds");  // wall-clock figures differ between runs
    j.erase("images_per_second");
    out.push_back(j);
  }
  return out;
}

class TrainRun : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("fervid_train_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    ::setenv("FERVID_CACHE", (dir_ / "cache").c_str(), 1);
    csv_ = dir_ / "fer.csv";
    write_synthetic_fer(csv_, 60, 6);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string train_args(const fs::path& out, int epochs) const {
    return "--threads 2 train --data " + csv_.string() + " --out " + out.string() +
           " --width 0.25 --input 32 --batch 16 --epochs " + std::to_string(epochs) +
           " --lr 0.02 --lambda-c 0.01 --gamma 0.1 --separation dda --erase 0.3 --seed 3";
  }
  fs::path dir_, csv_;
};

}  // namespace

TEST_F(TrainRun, WritesTheRunFolder) {
  const auto out = dir_ / "run";
  auto r = run(train_args(out, 2));
  ASSERT_EQ(r.status, 0) << r.out;
  for (const char* f : {"config.json", "command.txt", "metrics.jsonl", "checkpoint.json", "best.fervid", "last.fervid"}) {
    EXPECT_TRUE(fs::exists(out / f)) << f;
  }
  EXPECT_EQ(metrics(out).size(), 2u);
  std::ifstream cmd(out / "command.txt");
  std::string line;
  std::getline(cmd, line);
  EXPECT_NE(line.find("train --data"), std::string::npos) << line;
  // The saved config reproduces the flags.
  std::ifstream cfg(out / "config.json");
  auto j = nlohmann::json::parse(cfg);
  EXPECT_EQ(j["model"]["input_size"], 32);
  EXPECT_EQ(j["loss"]["form"], "dda");
  EXPECT_EQ(j["seed"], 3);
  // A second train into the same folder is refused; a config file is accepted and flags win.
  r = run(train_args(out, 2));
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("already holds a run"), std::string::npos) << r.out;
  r = run("train --config " + (out / "config.json").string() + " --out " + (dir_ / "run2").string() + " --epochs 1");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(metrics(dir_ / "run2").size(), 1u);
  EXPECT_EQ(metrics(dir_ / "run2")[0], metrics(out)[0]) << "same config and seed, same first epoch";

  // Evaluation of the run's model: the report, its hashes and the pictures.
  r = run("eval --model " + (out / "best.fervid").string() + " --data " + csv_.string() +
          " --split PrivateTest --tta tencrop --json --out " + (dir_ / "eval").string());
  ASSERT_EQ(r.status, 0) << r.out;
  auto report = nlohmann::json::parse(r.out);
  EXPECT_EQ(report["metrics"]["samples"], 42);
  EXPECT_EQ(report["tta"], "tencrop");
  EXPECT_EQ(report["model_sha256"].get<std::string>().size(), 64u);
  EXPECT_GE(report["metrics"]["accuracy"].get<double>(), 0.0);
  for (const char* f : {"report.json", "confusion.png", "reliability.png", "embedding.png"}) {
    EXPECT_TRUE(fs::exists(dir_ / "eval" / f)) << f;
  }
}

TEST_F(TrainRun, KilledMidEpochAndResumedMatchesAnUninterruptedRun) {
  const auto whole = dir_ / "whole", killed = dir_ / "killed";
  auto r = run(train_args(whole, 3));
  ASSERT_EQ(r.status, 0) << r.out;

  const std::string cmd = std::string(FERVID_CLI_PATH) + " " + train_args(killed, 3);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::execl("/bin/sh", "sh", "-c", ("exec " + cmd + " > /dev/null 2>&1").c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  // Wait until epoch 1 (the second) is under way: its first checkpoint exists and a little time passed.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(5);
  while (!fs::exists(killed / "checkpoint.json") && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the run finished before it could be killed; make the data larger";
  const auto partial = metrics(killed);
  ASSERT_GE(partial.size(), 1u);
  ASSERT_LT(partial.size(), 3u);

  r = run("--threads 2 train --resume " + killed.string());
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(metrics(killed), metrics(whole));
}

TEST_F(TrainRun, AblateScoresEveryArmOnTheTestSplit) {
  const auto out = dir_ / "ablate";
  auto r = run("--threads 2 ablate --data " + csv_.string() + " --out " + out.string() +
               " --width 0.125 --input 32 --batch 16 --epochs 1 --lr 0.02 --seed 3"
               " --arms vgg16,m,ce+center,ce+center+island-0.1,ce+center+dda-1");
  ASSERT_EQ(r.status, 0) << r.out;
  std::ifstream in(out / "ablation.json");
  const auto j = nlohmann::json::parse(in);
  ASSERT_EQ(j["rows"].size(), 5u);
  EXPECT_EQ(j["protocol"], "split PrivateTest");
  for (const auto& row : j["rows"]) {
    EXPECT_EQ(row["metrics"]["samples"], 42) << row["arm"];
    EXPECT_EQ(row["epochs"], 1) << row["arm"];
    EXPECT_TRUE(fs::exists(out / row["arm"].get<std::string>() / "run" / "best.fervid")) << row["arm"];
  }
  EXPECT_EQ(j["rows"][0]["variant"], "vgg16");
  // Each arm trained the network it names: its parameter count is what `fervid info` reports.
  for (size_t i : {0, 1, 2}) {
    const auto variant = j["rows"][i]["variant"].get<std::string>();
    const auto info = run("info --variant " + variant + " --width 0.125 --input 32 --json");
    ASSERT_EQ(info.status, 0) << info.out;
    EXPECT_EQ(j["rows"][i]["parameters"], nlohmann::json::parse(info.out)["totals"]["params"]) << variant;
  }
  EXPECT_EQ(j["rows"][3]["loss"]["form"], "island");
  EXPECT_DOUBLE_EQ(j["rows"][3]["loss"]["gamma"].get<double>(), 0.1);
  EXPECT_DOUBLE_EQ(j["rows"][4]["loss"]["lambda_c"].get<double>(), 0.01);
  std::ifstream md(out / "ablation.md");
  const std::string text((std::istreambuf_iterator<char>(md)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("| ce+center+dda-1 |"), std::string::npos) << text;
  EXPECT_NE(text.find("1 epochs"), std::string::npos) << "the budget is stated";
}
