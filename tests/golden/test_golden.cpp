// Golden outputs of the shipped model (models/fervid-default.fervid): on the demo image and on
// fixed face crops it gives the recorded boxes, labels and probabilities within 1e-3
// (tests/golden/expected.json, written by scripts/record_golden.py). A model replaced without
// re-recording fails here by its hash, before anything else is compared.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "../cli_runner.h"
#include "fervid/analyzer.h"
#include "fervid/hash.h"
#include "fervid/image_io.h"
#include "fervid/model_io.h"

#include <unistd.h>
#include <cmath>

namespace fs = std::filesystem;

namespace {

const fs::path kRoot = FERVID_SOURCE_DIR;

nlohmann::json expected() {
  std::ifstream in(kRoot / "tests" / "golden" / "expected.json");
  if (!in) throw std::runtime_error("tests/golden/expected.json is missing: run scripts/record_golden.py");
  return nlohmann::json::parse(in);
}

void expect_probs_near(const nlohmann::json& want, const std::vector<float>& got, const std::vector<std::string>& names,
                       double tol, const std::string& what) {
  ASSERT_EQ(want.size(), got.size()) << what;
  for (size_t k = 0; k < names.size(); ++k) EXPECT_NEAR(got[k], want.at(names[k]).get<double>(), tol) << what << " " << names[k];
}

class Golden : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    want_ = new nlohmann::json(expected());
    model_ = (kRoot / want_->at("model").get<std::string>()).string();
  }
  static void TearDownTestSuite() { delete want_; }
  static nlohmann::json* want_;
  static std::string model_;
};
nlohmann::json* Golden::want_ = nullptr;
std::string Golden::model_;

}  // namespace

TEST_F(Golden, ModelIsTheRecordedOne) {
  EXPECT_EQ(fervid::sha256_file(model_), want_->at("model_sha256").get<std::string>())
      << model_ << " changed: run scripts/record_golden.py and review the new outputs";
}

TEST_F(Golden, DemoImage) {
  const double tol = want_->at("tolerance").get<double>();
  const auto& faces = want_->at("demo_image").at("faces");
  for (bool fold : {true, false}) {  // the folded inference path and the plain network agree
    fervid::AnalyzerOptions o;
    o.classifier.fold_batchnorm = fold;
    const fervid::Analyzer analyzer(model_, o);
    const auto got = analyzer.analyze(fervid::read_image((kRoot / want_->at("demo_image").at("path").get<std::string>()).string()));
    ASSERT_EQ(got.size(), faces.size());
    for (size_t i = 0; i < got.size(); ++i) {
      const auto& w = faces[i];
      EXPECT_EQ(got[i].box.x, w["box"]["x"].get<int>());
      EXPECT_EQ(got[i].box.y, w["box"]["y"].get<int>());
      EXPECT_EQ(got[i].box.width, w["box"]["w"].get<int>());
      EXPECT_EQ(got[i].box.height, w["box"]["h"].get<int>());
      EXPECT_EQ(got[i].label_name, w["label"].get<std::string>());
      expect_probs_near(w["probs"], got[i].probs, analyzer.class_names(), tol, "demo face " + std::to_string(i) + (fold ? " folded" : " plain"));
    }
  }
}

TEST_F(Golden, FixedCrops) {
  const double tol = want_->at("tolerance").get<double>();
  const auto& crops = want_->at("crops");
  ASSERT_GE(crops.size(), 3u);
  const fervid::Classifier classifier(model_);
  for (const auto& c : crops) {
    const auto path = (kRoot / c["path"].get<std::string>()).string();
    const cv::Mat img = fervid::read_image(path, {fervid::ImageColor::kGray});
    ASSERT_EQ(img.rows, classifier.input_size()) << path;
    ASSERT_TRUE(img.isContinuous());
    const auto s = classifier.classify(img.ptr<uint8_t>());
    EXPECT_EQ(classifier.class_names()[static_cast<size_t>(s.label)], c["label"].get<std::string>()) << path;
    expect_probs_near(c["probs"], s.probs, classifier.class_names(), tol, path);
  }
}

TEST_F(Golden, PredictFindsTheShippedModelWithoutFlags) {
  auto r = fervid::test::run("--threads 1 predict --json " + (kRoot / "examples" / "astronaut.png").string());
  ASSERT_EQ(r.status, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out.substr(r.out.find('{')));
  EXPECT_EQ(fs::canonical(j["model"].get<std::string>()), fs::canonical(model_));
  const auto& faces = j["images"][0]["faces"];
  ASSERT_EQ(faces.size(), want_->at("demo_image").at("faces").size());
  EXPECT_EQ(faces[0]["label"], want_->at("demo_image").at("faces")[0]["label"]);
}

TEST_F(Golden, TheFilesTemperatureScalesTheProbabilities) {
  // The shipped model with temperature 2 written into its header: every crop's probabilities
  // become softmax(log(p) * T0 / 2) of those at the file's own temperature T0 (softmax(l / T0)),
  // the classes stay.
  const auto dir = fs::temp_directory_path() / ("fervid-golden-t-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const auto hot = (dir / "t2.fervid").string();
  fervid::Calibration cal;
  cal.temperature = 2.0;
  fervid::rewrite_calibration(model_, cal, hot);
  const fervid::Classifier base(model_), scaled(hot);
  EXPECT_EQ(scaled.temperature(), 2.0);
  for (const auto& c : want_->at("crops")) {
    const cv::Mat img = fervid::read_image((kRoot / c["path"].get<std::string>()).string(), {fervid::ImageColor::kGray});
    const auto p = base.classify(img.ptr<uint8_t>()), q = scaled.classify(img.ptr<uint8_t>());
    EXPECT_EQ(q.label, p.label);
    const double power = base.temperature() / 2.0;
    double z = 0;
    for (float v : p.probs) z += std::pow(static_cast<double>(v), power);
    for (size_t k = 0; k < p.probs.size(); ++k) EXPECT_NEAR(q.probs[k], std::pow(p.probs[k], power) / z, 1e-4) << k;
    EXPECT_LT(q.confidence, p.confidence);
  }
  fs::remove_all(dir);
}
