// `fervid train` end to end on a small synthetic FER2013 CSV: the run folder; a run killed with
// SIGKILL mid-epoch then resumed ends with exactly the metrics and weights of an uninterrupted
// run; the offline 15x expansion; the device flag.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "cli_runner.h"
#include "model_file_bytes.h"
#include "test_train_data.h"

namespace fs = std::filesystem;
using fervid::test::run;

namespace {

void write_synthetic_fer(const fs::path& path, int per_class_train, int per_class_test) {
  fervid::test::write_synthetic_fer2013(path, per_class_train, per_class_test);
}

// Every tensor of a .fervid model file (model_io.h's format: magic, version u32, header size
// u64, JSON header with the tensor table, raw data, checksum), by name: its table entry and
// its raw bytes. Read here without the library, so the comparison is of the file's bits.
struct StoredTensor {
  nlohmann::json entry;
  std::string bytes;
};
std::map<std::string, StoredTensor> stored_tensors(const fs::path& path) {
  const auto file = fervid::test::ModelFileBytes::read(path.string());
  if (file.magic != "FERVIDMF") throw std::runtime_error(path.string() + ": not a model file");
  std::map<std::string, StoredTensor> out;
  for (const auto& t : file.header.at("tensors")) {
    const auto offset = t.at("offset").get<size_t>(), nbytes = t.at("nbytes").get<size_t>();
    if (offset + nbytes > file.data.size()) throw std::runtime_error(path.string() + ": tensor outside the file");
    out[t.at("name").get<std::string>()] = {t, file.data.substr(offset, nbytes)};
  }
  return out;
}

// Empty when both files hold the same tensors bit for bit; else the first difference.
std::string weight_difference(const fs::path& a, const fs::path& b) {
  const auto ta = stored_tensors(a), tb = stored_tensors(b);
  if (ta.empty()) return a.string() + " holds no tensors";
  if (ta.size() != tb.size()) return "tensor counts differ: " + std::to_string(ta.size()) + " vs " + std::to_string(tb.size());
  for (const auto& [name, t] : ta) {
    auto it = tb.find(name);
    if (it == tb.end()) return "tensor '" + name + "' missing from " + b.string();
    if (t.entry.at("shape") != it->second.entry.at("shape") || t.entry.at("dtype") != it->second.entry.at("dtype"))
      return "tensor '" + name + "': shape or dtype differs";
    if (t.bytes != it->second.bytes) return "tensor '" + name + "': values differ";
  }
  return "";
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
  for (const char* f : {"config.json", "command.txt", "metrics.jsonl", "checkpoint.json", "best.fervid", "last.fervid",
                        "calibration.json"}) {
    EXPECT_TRUE(fs::exists(out / f)) << f;
  }
#ifdef FERVID_WITH_OPENCV
  EXPECT_TRUE(fs::exists(out / "curves.png"));
#endif
  EXPECT_EQ(metrics(out).size(), 2u);
  // The end of the run: the temperature fitted on the validation split, in the summary.
  EXPECT_NE(r.out.find("calibrated best.fervid on split PublicTest"), std::string::npos) << r.out;
  const auto summary = nlohmann::json::parse(r.out.substr(r.out.rfind("{\"best_epoch\"")));
  EXPECT_GT(summary["calibration"]["temperature"].get<double>(), 0.0) << summary;
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
  EXPECT_TRUE(fs::exists(dir_ / "eval" / "report.json"));
#ifdef FERVID_WITH_OPENCV  // the PNGs are drawn with OpenCV
  for (const char* f : {"confusion.png", "reliability.png", "embedding.png"}) {
    EXPECT_TRUE(fs::exists(dir_ / "eval" / f)) << f;
  }
#endif
}

TEST_F(TrainRun, KilledMidEpochAndResumedMatchesAnUninterruptedRun) {
  const auto whole = dir_ / "whole", killed = dir_ / "killed";
  auto r = run(train_args(whole, 3));
  ASSERT_EQ(r.status, 0) << r.out;

  // The same run with a progress line per batch on a pipe: killed once batch 3 of epoch 2 is done.
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const std::string cmd = std::string(FERVID_CLI_PATH) + " " + train_args(killed, 3) + " --log-every 1";
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::dup2(fds[1], STDERR_FILENO);
    ::close(fds[0]);
    ::close(fds[1]);
    ::execl("/bin/sh", "sh", "-c", ("exec " + cmd + " > /dev/null").c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  ::close(fds[1]);
  FILE* progress = ::fdopen(fds[0], "r");
  ASSERT_NE(progress, nullptr);
  const std::regex batch_line(R"(^epoch (\d+)/3 \[(\d+)/(\d+)\])");
  std::string output, kill_line;
  int kill_batch = 0, batches = 0;
  char buf[4096];
  while (std::fgets(buf, sizeof(buf), progress) != nullptr) {
    const std::string line(buf);
    output += line;
    std::smatch m;
    if (kill_line.empty() && std::regex_search(line, m, batch_line) && m[1] == "2" && std::stoi(m[2].str()) >= 3) {
      ::kill(pid, SIGKILL);
      kill_line = line;
      kill_batch = std::stoi(m[2].str());
      batches = std::stoi(m[3].str());
    }
  }
  std::fclose(progress);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_FALSE(kill_line.empty()) << "never saw batch 3 of epoch 2:\n" << output;
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "the run was not killed:\n" << output;
  // Mid-epoch: batch 3 of epoch 2 was reported, the epoch has more batches, and epoch 2 never
  // reached its checkpoint (only epoch 1's metrics were published).
  EXPECT_LT(kill_batch, batches) << kill_line;
  std::cout << "killed after: " << kill_line;
  const auto partial = metrics(killed);
  ASSERT_EQ(partial.size(), 1u) << "killed at: " << kill_line;
  std::ifstream pointer(killed / "checkpoint.json");
  EXPECT_EQ(nlohmann::json::parse(pointer)["epoch"], 0) << "the checkpoint is epoch 1's";

  r = run("--threads 2 train --resume " + killed.string());
  ASSERT_EQ(r.status, 0) << r.out;
  const auto resumed = metrics(killed), uninterrupted = metrics(whole);
  ASSERT_EQ(resumed.size(), 3u);
  EXPECT_EQ(resumed, uninterrupted);
  // And the weights: every tensor of the final model, bit for bit. (The files themselves
  // differ: their headers record each run's own command and folder.)
  EXPECT_EQ(weight_difference(killed / "last.fervid", whole / "last.fervid"), "");
  EXPECT_EQ(weight_difference(killed / "best.fervid", whole / "best.fervid"), "");
  // The class centers too: torch::save writes them byte-deterministically (unlike optimizer.pt,
  // whose state keys are tensor addresses).
  const auto loss_pt = [](const fs::path& run_dir) {
    std::ifstream in(run_dir / "checkpoint-2" / "loss.pt", std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  };
  EXPECT_FALSE(loss_pt(whole).empty());
  EXPECT_TRUE(loss_pt(killed) == loss_pt(whole)) << "the centers differ";
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

TEST_F(TrainRun, Expand15xTrainsOnFifteenTimesTheSamplesDeterministically) {
  auto args = [&](const fs::path& out, const std::string& extra) {
    return "--threads 2 train --data " + csv_.string() + " --out " + out.string() +
           " --width 0.125 --input 32 --batch 14 --epochs 2 --max-train-samples 14 --seed 3 " + extra;
  };
  auto r = run(args(dir_ / "plain", ""));
  ASSERT_EQ(r.status, 0) << r.out;
  r = run(args(dir_ / "x15a", "--expand-15x"));
  ASSERT_EQ(r.status, 0) << r.out;
  r = run(args(dir_ / "x15b", "--expand-15x"));
  ASSERT_EQ(r.status, 0) << r.out;
  const auto plain = metrics(dir_ / "plain"), a = metrics(dir_ / "x15a"), b = metrics(dir_ / "x15b");
  ASSERT_EQ(plain.size(), 2u);
  ASSERT_EQ(a.size(), 2u);
  for (size_t e = 0; e < 2; ++e) {
    EXPECT_EQ(plain[e]["train_samples"], 14) << e;
    EXPECT_EQ(a[e]["train_samples"], 15 * 14) << e;
  }
  // The resolved config records the preset; one seed gives one run.
  std::ifstream cfg(dir_ / "x15a" / "config.json");
  EXPECT_EQ(nlohmann::json::parse(cfg)["expand_15x"], true);
  EXPECT_EQ(a, b);
  EXPECT_EQ(weight_difference(dir_ / "x15a" / "last.fervid", dir_ / "x15b" / "last.fervid"), "");
  EXPECT_NE(weight_difference(dir_ / "x15a" / "last.fervid", dir_ / "plain" / "last.fervid"), "")
      << "the expansion changed nothing";
}

TEST_F(TrainRun, DeviceFlag) {
  // cpu: recorded in the config and in the model's metadata.
  auto r = run(train_args(dir_ / "cpu", 1) + " --device cpu");
  ASSERT_EQ(r.status, 0) << r.out;
  std::ifstream cfg(dir_ / "cpu" / "config.json");
  EXPECT_EQ(nlohmann::json::parse(cfg)["device"], "cpu");
  // A resumed run may choose its device again (here the one that exists).
  r = run("--threads 2 train --resume " + (dir_ / "cpu").string() + " --device auto");
  ASSERT_EQ(r.status, 0) << r.out;
  // An unknown name is refused, naming it.
  r = run(train_args(dir_ / "tpu", 1) + " --device tpu");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("device 'tpu'"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(dir_ / "tpu"));
  // cuda: without a CUDA device, a clear error before any work (no run folder); with one, it trains.
  r = run(train_args(dir_ / "cuda", 1) + " --device cuda");
  if (r.out.find("CUDA is not available in this libtorch build/machine") != std::string::npos) {
    EXPECT_NE(r.status, 0);
    EXPECT_FALSE(fs::exists(dir_ / "cuda")) << "work started before the device was checked";
    const auto e = run("eval --model " + (dir_ / "cpu" / "last.fervid").string() + " --data " + csv_.string() +
                       " --device cuda --out " + (dir_ / "eval").string());
    EXPECT_NE(e.status, 0);
    EXPECT_NE(e.out.find("CUDA is not available"), std::string::npos) << e.out;
    EXPECT_FALSE(fs::exists(dir_ / "eval"));
  } else {
    EXPECT_EQ(r.status, 0) << r.out;
    EXPECT_EQ(metrics(dir_ / "cuda").size(), 1u);
  }
}

// The model file records the face recipe a user states when training on already-cropped faces
// (a FER2013 CSV): the serving recipe, in every model file of the run; `fervid model
// set-recipe` rewrites it without retraining; the recipe flags do not apply to reading a CSV.
TEST_F(TrainRun, TheServingRecipeGivenAsFlagsTravelsInEveryModelFile) {
  const auto out = dir_ / "run";
  auto r = run(train_args(out, 1) + " --align --detector haar --margin 0.2 --offset-y -0.05");
  ASSERT_EQ(r.status, 0) << r.out;
  auto recipe_of = [&](const fs::path& model) {
    const auto info = run("info --model " + model.string() + " --json");
    EXPECT_EQ(info.status, 0) << info.out;
    return info.status == 0 ? nlohmann::json::parse(info.out)["model"]["face_recipe"] : nlohmann::json();
  };
  std::ifstream pointer(out / "checkpoint.json");
  const auto checkpoint = out / nlohmann::json::parse(pointer)["dir"].get<std::string>() / "model.fervid";
  for (const auto& model : {out / "last.fervid", out / "best.fervid", checkpoint}) {
    const auto recipe = recipe_of(model);
    EXPECT_EQ(recipe["align"], true) << model;
    EXPECT_EQ(recipe["detector"], "haar") << model;
    EXPECT_EQ(recipe["margin"], 0.2) << model;
    EXPECT_EQ(recipe["offset_y"], -0.05) << model;
    EXPECT_EQ(recipe["min_face"], 30) << model << ": not given, the default";
  }
  std::ifstream cfg(out / "config.json");
  const auto config = nlohmann::json::parse(cfg);
  EXPECT_EQ(config["source"]["align"], true);
  EXPECT_TRUE(config["source"]["min_face"].is_null());

  // The text of `info --model` names the recipe; set-recipe rewrites it field by field.
  r = run("info --model " + (out / "last.fervid").string());
  EXPECT_NE(r.out.find("face recipe: detector haar"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("format version 2"), std::string::npos) << r.out;
  r = run("model set-recipe " + (out / "last.fervid").string() + " --no-align --detector blazeface --out " +
          (dir_ / "served.fervid").string());
  ASSERT_EQ(r.status, 0) << r.out;
  const auto served = recipe_of(dir_ / "served.fervid");
  EXPECT_EQ(served["align"], false);
  EXPECT_EQ(served["detector"], "blazeface");
  EXPECT_EQ(served["margin"], 0.2) << "the file's, kept";
  EXPECT_EQ(weight_difference(out / "last.fervid", dir_ / "served.fervid"), "");
  r = run("model set-recipe " + (out / "last.fervid").string() + " --reset --out " + (dir_ / "reset.fervid").string());
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(recipe_of(dir_ / "reset.fervid")["detector"], "blazeface");
  EXPECT_EQ(recipe_of(dir_ / "reset.fervid")["align"], false);
  r = run("model set-recipe " + (out / "last.fervid").string() + " --margin 3 --out " + (dir_ / "bad.fervid").string());
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("--margin must be in [0, 2], got 3"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(dir_ / "bad.fervid"));

  // Evaluating on a CSV reads it as it is: the model's recipe is reported, none is applied.
  r = run("eval --model " + (out / "last.fervid").string() + " --data " + csv_.string() + " --json --out " +
          (dir_ / "eval").string());
  ASSERT_EQ(r.status, 0) << r.out;
  const auto report = nlohmann::json::parse(r.out);
  EXPECT_EQ(report["model_face_recipe"]["margin"], 0.2);
  EXPECT_TRUE(report["face_recipe"].is_null());
  r = run("eval --model " + (out / "last.fervid").string() + " --data " + csv_.string() + " --min-face 40");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("--min-face applies to sources whose faces are detected"), std::string::npos) << r.out;
  r = run("data check " + csv_.string() + " --align");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("--align applies to sources whose faces are detected"), std::string::npos) << r.out;
}
