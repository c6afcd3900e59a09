// BlazeFace (src/vision/blazeface.cpp): the graph on a real face against TensorFlow.js
// (tests/fixtures/blazeface_reference.json, recorded by tests/reference/tfjs/record_blazeface.mjs),
// MediaPipe's anchors and decoding, weighted non-maximum suppression, and the detector on the
// demo image, a face that fills its image, a small face in a large frame and a face-free photo.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include <cmath>
#include <fstream>
#include <future>
#include <string>

#include "../../src/vision/blazeface.h"
#include "fervid/image_io.h"
#include "fervid/vision.h"
#include "vision_test_util.h"

namespace fervid {
namespace {

const std::string kAstronaut = std::string(FERVID_EXAMPLES_DIR) + "/astronaut.png";

nlohmann::json reference() {
  std::ifstream in((test::fixtures_dir() / "blazeface_reference.json").string());
  return nlohmann::json::parse(in);
}

TEST(BlazeFace, GraphOnTheDemoFaceEqualsTensorFlowJs) {
  const auto ref = reference();
  const auto& c = ref["inputs"][1];
  ASSERT_EQ(c["id"], "astronaut_box2x2");
  // The fixture's input: the 512 x 512 demo image, RGB, 2 x 2 box mean, then m / 127.5 - 1.
  const cv::Mat bgr = cv::imread(kAstronaut, cv::IMREAD_COLOR);
  ASSERT_EQ(bgr.size(), cv::Size(512, 512));
  auto input = torch::empty({1, 256, 256, 3});
  float* p = input.data_ptr<float>();
  for (int y = 0; y < 256; ++y)
    for (int x = 0; x < 256; ++x)
      for (int ch = 0; ch < 3; ++ch) {
        const int cv_ch = 2 - ch;  // RGB in the fixture, BGR in OpenCV
        const double m = (bgr.at<cv::Vec3b>(2 * y, 2 * x)[cv_ch] + bgr.at<cv::Vec3b>(2 * y, 2 * x + 1)[cv_ch] +
                          bgr.at<cv::Vec3b>(2 * y + 1, 2 * x)[cv_ch] + bgr.at<cv::Vec3b>(2 * y + 1, 2 * x + 1)[cv_ch]) /
                         4.0;
        p[(y * 256 + x) * 3 + ch] = static_cast<float>(m / 127.5 - 1.0);
      }
  const auto& sum = c["input_check"]["sum"];
  EXPECT_NEAR(input.sum().item<double>(), sum.is_string() ? std::stod(sum.get<std::string>()) : sum.get<double>(), 0.5);
  const TfjsGraph graph(default_blazeface_path());
  const auto out = graph.run(input);
  for (size_t k = 0; k < out.size(); ++k) {
    const auto want = torch::tensor(c["outputs"][graph.output_names()[k] + ":0"].get<std::vector<float>>())
                          .reshape(out[k].sizes());
    const auto excess = (out[k] - want).abs() - (1e-4 * want.abs() + 2e-3);
    EXPECT_LE(excess.max().item<float>(), 0.0f)
        << graph.output_names()[k] << ": max |diff| " << (out[k] - want).abs().max().item<float>();
  }
  // The best anchor is the one TF.js found, with its logit.
  const auto scores = torch::cat({out[0], out[1]}, 1).flatten();
  EXPECT_EQ(scores.argmax().item<int64_t>(), c["top5_anchors"][0]["anchor"].get<int64_t>());
  EXPECT_NEAR(scores.max().item<float>(), c["top5_anchors"][0]["logit"].get<float>(), 1e-3);
}

TEST(BlazeFace, AnchorsAreMediaPipesBackModelGrid) {
  const auto a = vision_internal::blazeface_anchors();
  ASSERT_EQ(a.size(), 896u);
  // 16 x 16 cells, 2 anchors each, row by row; then 8 x 8 cells, 6 anchors each.
  EXPECT_EQ(a[0], cv::Point2f(0.5f / 16, 0.5f / 16));
  EXPECT_EQ(a[1], a[0]);
  EXPECT_EQ(a[2], cv::Point2f(1.5f / 16, 0.5f / 16));
  EXPECT_EQ(a[32], cv::Point2f(0.5f / 16, 1.5f / 16));
  EXPECT_EQ(a[511], cv::Point2f(15.5f / 16, 15.5f / 16));
  EXPECT_EQ(a[512], cv::Point2f(0.5f / 8, 0.5f / 8));
  EXPECT_EQ(a[517], a[512]);
  EXPECT_EQ(a[518], cv::Point2f(1.5f / 8, 0.5f / 8));
  EXPECT_EQ(a[895], cv::Point2f(7.5f / 8, 7.5f / 8));
}

TEST(BlazeFace, DecodingPutsOffsetsOnTheAnchorInInputPixels) {
  const auto anchors = vision_internal::blazeface_anchors();
  std::vector<float> scores(896, -10.0f), reg(896 * 16, 0.0f);
  scores[111] = 2.0f;   // sigmoid 0.8808
  scores[600] = -0.5f;  // sigmoid 0.3775: under 0.5
  float* r = &reg[111 * 16];
  r[0] = 3;    // x offset
  r[1] = -2;   // y offset
  r[2] = 40;   // width
  r[3] = 50;   // height
  r[4] = -10;  // right eye x offset
  r[5] = -6;
  const auto found = vision_internal::decode_blazeface(scores.data(), reg.data(), anchors, 0.5f);
  ASSERT_EQ(found.size(), 1u);
  const auto& c = found[0];
  EXPECT_EQ(c.anchor, 111);
  EXPECT_NEAR(c.score, 1.0 / (1.0 + std::exp(-2.0)), 1e-6);
  const double ax = anchors[111].x * 256, ay = anchors[111].y * 256;  // (120, 56)
  EXPECT_NEAR(ax, 120.0, 1e-4);
  EXPECT_NEAR(ay, 56.0, 1e-4);
  EXPECT_NEAR(c.x0, ax + 3 - 20, 1e-4);
  EXPECT_NEAR(c.x1, ax + 3 + 20, 1e-4);
  EXPECT_NEAR(c.y0, ay - 2 - 25, 1e-4);
  EXPECT_NEAR(c.y1, ay - 2 + 25, 1e-4);
  EXPECT_NEAR(c.keypoints[kRightEye].x, ax - 10, 1e-4);
  EXPECT_NEAR(c.keypoints[kRightEye].y, ay - 6, 1e-4);
  EXPECT_NEAR(c.keypoints[kMouthCenter].x, ax, 1e-4);  // zero offset: the anchor centre
  EXPECT_EQ(vision_internal::decode_blazeface(scores.data(), reg.data(), anchors, 0.3f).size(), 2u);
}

TEST(BlazeFace, WeightedSuppressionAveragesOverlapsByScore) {
  using vision_internal::BlazeFaceRaw;
  BlazeFaceRaw a{0, 0, 100, 100, 0.9f, {}}, b{10, 0, 110, 100, 0.6f, {}}, far{300, 300, 350, 350, 0.7f, {}};
  a.keypoints[0] = {30, 40};
  b.keypoints[0] = {40, 40};
  const auto out = vision_internal::weighted_nms({b, far, a}, 0.3f);  // IoU(a, b) = 90/110
  ASSERT_EQ(out.size(), 2u);
  EXPECT_FLOAT_EQ(out[0].score, 0.9f);  // the group keeps its best score
  EXPECT_NEAR(out[0].x0, (0.9 * 0 + 0.6 * 10) / 1.5, 1e-5);  // float scores as weights
  EXPECT_NEAR(out[0].x1, (0.9 * 100 + 0.6 * 110) / 1.5, 1e-5);
  EXPECT_NEAR(out[0].keypoints[0].x, (0.9 * 30 + 0.6 * 40) / 1.5, 1e-5);
  EXPECT_FLOAT_EQ(out[1].score, 0.7f);
  EXPECT_NEAR(out[1].x0, 300, 1e-5);
  // Above the threshold they stay apart.
  EXPECT_EQ(vision_internal::weighted_nms({a, b}, 0.9f).size(), 2u);
}

TEST(BlazeFace, FindsTheDemoFaceWithItsKeypoints) {
  const FaceDetector detector;
  ASSERT_EQ(detector.kind(), DetectorKind::kBlazeFace);
  const cv::Mat img = read_image(kAstronaut);
  const auto faces = detector.detect_faces(img);
  ASSERT_EQ(faces.size(), 1u);
  const auto& f = faces[0];
  // TF.js's best anchor on the half-size image decodes to x 172-277, y 74-180 (fixture).
  EXPECT_GE(box_iou(f.box, cv::Rect(172, 74, 105, 106)), 0.8) << f.box;
  EXPECT_GT(f.score, 0.75f);
  ASSERT_EQ(f.keypoints.size(), 6u);
  // The person's right eye is on the image's left; eyes above nose above mouth.
  EXPECT_LT(f.keypoints[kRightEye].x, f.keypoints[kLeftEye].x);
  EXPECT_LT(f.keypoints[kLeftEye].y, f.keypoints[kNoseTip].y);
  EXPECT_LT(f.keypoints[kNoseTip].y, f.keypoints[kMouthCenter].y);
  EXPECT_NEAR(f.keypoints[kRightEye].x, 2 * 101.3, 6);  // fixture: (101.3, 51.1) at half size
  EXPECT_NEAR(f.keypoints[kRightEye].y, 2 * 51.1, 6);
  // Gray and BGRA inputs find the same face.
  cv::Mat gray, bgra;
  cv::cvtColor(img, gray, cv::COLOR_BGR2GRAY);
  cv::cvtColor(img, bgra, cv::COLOR_BGR2BGRA);
  ASSERT_EQ(detector.detect_faces(gray).size(), 1u);
  EXPECT_GE(box_iou(detector.detect_faces(gray)[0].box, f.box), 0.8);
  ASSERT_EQ(detector.detect_faces(bgra).size(), 1u);
  EXPECT_EQ(detector.detect_faces(bgra)[0].box, f.box);
}

TEST(BlazeFace, FindsAFaceThatFillsItsImage) {
  const cv::Mat img = read_image(kAstronaut);
  const cv::Mat crop = img(cv::Rect(182, 84, 86, 86)).clone();  // inside the face: no background left
  const FaceDetector detector;
  const auto faces = detector.detect_faces(crop);
  ASSERT_EQ(faces.size(), 1u);
  EXPECT_GE(box_iou(faces[0].box, cv::Rect(0, 0, 86, 86)), 0.5) << faces[0].box;
}

TEST(BlazeFace, FindsASmallFaceInALargeFrameOnceAcrossTiles) {
  const cv::Mat img = read_image(kAstronaut);
  cv::Mat face;
  cv::resize(img(cv::Rect(150, 40, 160, 170)), face, cv::Size(80, 85), 0, 0, cv::INTER_AREA);
  cv::Mat frame(1080, 1920, CV_8UC3, cv::Scalar(90, 90, 90));
  // Straddles the boundary between the first and second tile column (1920 / 3 = 640).
  face.copyTo(frame(cv::Rect(600, 500, face.cols, face.rows)));
  const auto tiled = FaceDetector().detect_faces(frame);
  ASSERT_EQ(tiled.size(), 1u) << "found " << tiled.size();
  EXPECT_GE(box_iou(tiled[0].box, cv::Rect(600 + 8, 500 + 12, 55, 55)), 0.4) << tiled[0].box;
}

TEST(BlazeFace, NoFaceOnTheBackdropAndConcurrentCallsAgree) {
  const FaceDetector detector;
  const cv::Mat backdrop = read_image((test::fixtures_dir() / "no_face_astronaut_backdrop.jpg").string());
  EXPECT_TRUE(detector.detect_faces(backdrop).empty());
  const cv::Mat img = read_image(kAstronaut);
  const auto want = detector.detect(img);
  std::vector<std::future<std::vector<cv::Rect>>> runs;
  for (int t = 0; t < 4; ++t) runs.push_back(std::async(std::launch::async, [&] { return detector.detect(img); }));
  for (auto& r : runs) EXPECT_EQ(r.get(), want);
}

TEST(BlazeFace, OptionsAreCheckedAndNamed) {
  auto message = [](FaceDetectorOptions o) {
    try {
      FaceDetector d(o);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("(accepted)");
  };
  FaceDetectorOptions o;
  o.min_score = 1.5f;
  EXPECT_NE(message(o).find("min_score"), std::string::npos);
  o = {};
  o.nms_iou = 0;
  EXPECT_NE(message(o).find("nms_iou"), std::string::npos);
  o = {};
  o.tile_above = 100;
  EXPECT_NE(message(o).find("tile_above"), std::string::npos);
  o = {};
  o.blazeface_path = "/nonexistent/blazeface.json";
  try {
    FaceDetector d(o);
    FAIL() << "loaded a missing model";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/blazeface.json"), std::string::npos) << e.what();
  }
  EXPECT_EQ(parse_detector_kind("haar"), DetectorKind::kHaar);
  EXPECT_THROW(parse_detector_kind("ssd"), std::invalid_argument);
}

}  // namespace
}  // namespace fervid
