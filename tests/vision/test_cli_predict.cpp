// `fervid predict` as a user runs it: faces found and classified, JSON, annotated output and
// crops; every kind of bad input named in the message with a non-zero exit; an image without
// a face is an empty result and exit 0. Uses a small random model (the shipped model's outputs
// are the golden tests' business).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include "../cli_runner.h"
#include "fervid/model.h"
#include "fervid/model_io.h"

namespace fs = std::filesystem;
using fervid::test::run;

namespace {

const fs::path kRoot = FERVID_SOURCE_DIR;

class Predict : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("fervid_predict_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    fervid::ModelConfig c;
    c.width = 0.125;
    torch::manual_seed(1);
    fervid::MCSANet net(c);
    model_ = (dir_ / "tiny.fervid").string();
    fervid::save_model(model_, net);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string predict(const std::string& args) const { return "--threads 1 predict --model " + model_ + " " + args; }
  fs::path dir_;
  std::string model_;
  const std::string demo_ = (kRoot / "examples" / "astronaut.png").string();
};

}  // namespace

TEST_F(Predict, FindsTheFaceWritesJsonAnnotationAndCrops) {
  auto r = run(predict("--json --annotate " + (dir_ / "out.png").string() + " --crops " + (dir_ / "crops").string() + " " + demo_));
  ASSERT_EQ(r.status, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out.substr(r.out.find('{')));
  ASSERT_EQ(j["images"].size(), 1u);
  const auto& faces = j["images"][0]["faces"];
  ASSERT_EQ(faces.size(), 1u) << "the demo portrait has one face";
  const auto& box = faces[0]["box"];
  // The face is in the upper middle of the 512 x 512 portrait (hand-checked: about x 180-270, y 70-160).
  EXPECT_NEAR(box["x"].get<int>() + box["w"].get<int>() / 2, 224, 30);
  EXPECT_NEAR(box["y"].get<int>() + box["h"].get<int>() / 2, 115, 30);
  double sum = 0;
  for (const auto& [name, p] : faces[0]["probs"].items()) sum += p.get<double>();
  EXPECT_NEAR(sum, 1.0, 1e-4);
  EXPECT_EQ(faces[0]["probs"].size(), 7u);
  const cv::Mat annotated = cv::imread((dir_ / "out.png").string());
  ASSERT_FALSE(annotated.empty());
  EXPECT_EQ(annotated.cols, 512);
  const cv::Mat crop = cv::imread((dir_ / "crops" / "astronaut-face1.png").string(), cv::IMREAD_UNCHANGED);
  ASSERT_FALSE(crop.empty());
  EXPECT_EQ(crop.type(), CV_8UC1);
  EXPECT_EQ(crop.rows, 48);

  // The crop, classified as a whole image, gets exactly the same probabilities.
  r = run(predict("--json --whole-image " + (dir_ / "crops" / "astronaut-face1.png").string()));
  ASSERT_EQ(r.status, 0) << r.out;
  const auto k = nlohmann::json::parse(r.out.substr(r.out.find('{')));
  for (const auto& [name, p] : faces[0]["probs"].items())
    EXPECT_NEAR(k["images"][0]["faces"][0]["probs"][name].get<double>(), p.get<double>(), 1e-6) << name;
}

TEST_F(Predict, AFolderAnnotatesIntoAFolder) {
  fs::create_directories(dir_ / "in" / "sub");
  fs::copy_file(demo_, dir_ / "in" / "a.png");
  fs::copy_file(demo_, dir_ / "in" / "sub" / "a.png");  // same name in a subfolder: its own output
  fs::copy_file(FERVID_FIXTURES_DIR "/no_face_astronaut_backdrop.jpg", dir_ / "in" / "b.jpg");
  auto r = run(predict("--annotate " + (dir_ / "out").string() + " --crops " + (dir_ / "crops").string() + " " +
                       (dir_ / "in").string()));
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("a.png: 1 face"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("b.jpg: 0 faces"), std::string::npos) << r.out;
  for (const char* f : {"a.png", "a-2.png", "b.png"}) EXPECT_TRUE(fs::exists(dir_ / "out" / f)) << f;
  for (const char* f : {"a-face1.png", "a-2-face1.png"}) EXPECT_TRUE(fs::exists(dir_ / "crops" / f)) << f;
}

TEST_F(Predict, NoFaceIsAnEmptyResultAndSuccess) {
  auto r = run(predict("--json " FERVID_FIXTURES_DIR "/no_face_astronaut_backdrop.jpg"));
  ASSERT_EQ(r.status, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out.substr(r.out.find('{')));
  EXPECT_TRUE(j["images"][0]["faces"].empty());
  EXPECT_EQ(j["faces"], 0);
}

TEST_F(Predict, BadInputIsNamedWithANonZeroExit) {
  // A missing file.
  auto r = run(predict((dir_ / "missing.jpg").string()));
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("missing.jpg"), std::string::npos) << r.out;
  // An unreadable image (a PNG signature and nothing else), beside a good one: the good one is
  // still reported, the exit status says something failed.
  { std::ofstream(dir_ / "broken.png", std::ios::binary) << "\x89PNG\r\n\x1a\n"; }
  r = run(predict(demo_ + " " + (dir_ / "broken.png").string()));
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("broken.png"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("astronaut.png: 1 face"), std::string::npos) << r.out;
  // A model file of the wrong format.
  { std::ofstream(dir_ / "model.fervid") << "not a model"; }
  r = run("predict --model " + (dir_ / "model.fervid").string() + " " + demo_);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("model.fervid"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("not a fervid model"), std::string::npos) << r.out;
  // An empty folder.
  fs::create_directories(dir_ / "empty");
  r = run(predict((dir_ / "empty").string()));
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("holds no image"), std::string::npos) << r.out;
}

// A file name that is not UTF-8 (Linux names are bytes) is written with \xNN escapes: the JSON
// report still prints, the other images in it too.
TEST_F(Predict, ANameThatIsNotUtf8KeepsTheReport) {
  const fs::path odd = dir_ / "caf\xE9.png";  // Latin-1 e-acute: not UTF-8
  fs::copy_file(demo_, odd);
  const auto r = run(predict("--json " + demo_ + " " + odd.string()));
  ASSERT_EQ(r.status, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out.substr(r.out.find('{')));
  ASSERT_EQ(j.at("images").size(), 2u);
  EXPECT_EQ(j["images"][0]["faces"].size(), 1u);
  const std::string name = j["images"][1]["image"];
  EXPECT_NE(name.find("caf\\xE9.png"), std::string::npos) << name;
  EXPECT_EQ(j["images"][1]["faces"].size(), 1u) << "the image itself is read";
}

// The model's face recipe is how predict finds and crops faces unless a flag says otherwise,
// field by field; the flags are the one table's, with its ranges.
TEST_F(Predict, TheModelsRecipeIsTheDefaultAndFlagsOverrideIt) {
  fervid::ModelConfig c;
  c.width = 0.125;
  fervid::MCSANet net(c);
  fervid::FaceRecipe trained;
  trained.align = true;
  trained.margin = 0.15;
  const std::string model = (dir_ / "aligned.fervid").string();
  fervid::save_model(model, net, {}, trained);
  auto recipe_of = [&](const std::string& flags) {
    const auto r = run("--threads 1 predict --model " + model + " --json " + flags + " " + demo_);
    EXPECT_EQ(r.status, 0) << flags << ": " << r.out;
    return r.status == 0 ? nlohmann::json::parse(r.out.substr(r.out.find('{')))["face_recipe"] : nlohmann::json();
  };
  const auto given = recipe_of("");
  EXPECT_EQ(given["align"], true);
  EXPECT_EQ(given["margin"], 0.15);
  EXPECT_EQ(given["detector"], "blazeface");
  const auto changed = recipe_of("--no-align --margin 0.2 --min-face 40");
  EXPECT_EQ(changed["align"], false);
  EXPECT_EQ(changed["margin"], 0.2);
  EXPECT_EQ(changed["min_face"], 40);
  EXPECT_EQ(changed["border"], "replicate");
  EXPECT_EQ(recipe_of("--detector haar --neighbors 5")["detector"], "haar");
  EXPECT_EQ(recipe_of("--whole-image")["margin"], 0.0);

  for (const auto& [flags, says] : std::vector<std::pair<std::string, std::string>>{
           {"--margin 3", "--margin must be in [0, 2], got 3"},
           {"--min-face 0", "--min-face must be an integer in [1, 100000], got 0"},
           {"--detector sift", "--detector must be blazeface or haar, got sift"},
           {"--min-face 60 --max-face 50", "--max-face (50) is smaller than --min-face (60)"},
           {"--align-with eyes", "--align-with must be keypoints or landmarks68, got eyes"}}) {
    const auto r = run(predict(flags + " " + demo_));
    EXPECT_NE(r.status, 0) << flags;
    EXPECT_NE(r.out.find(says), std::string::npos) << flags << ": " << r.out;
  }
  const auto help = run("predict --help");
  for (const char* flag : {"--detector", "--min-score", "--nms-iou", "--tile-above", "--min-face", "--max-face",
                           "--neighbors", "--scale-step", "--detect-side", "--margin", "--offset-y", "--align",
                           "--no-align", "--align-with", "--border"})
    EXPECT_NE(help.out.find(flag), std::string::npos) << flag;
}
