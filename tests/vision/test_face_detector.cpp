// FaceDetector and LandmarkAligner without the shared data: missing or foreign model files are
// clear errors, option checks, zero faces on face-free images (the fixture and synthetic ones).
// Needs the system's opencv-data and libdlib-data packages (their model files), not FERVID_DATA.
#include <opencv2/imgproc.hpp>

#include "fervid/vision.h"
#include "vision_test_util.h"

namespace fervid {
namespace {

using test::TempDir;

template <typename E, typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "<nothing thrown>";
}

TEST(FaceDetector, MissingCascadeFileNamesIt) {
  FaceDetectorOptions o;
  o.detector = DetectorKind::kHaar;
  o.cascade_path = "/nonexistent/cascade.xml";
  const std::string msg = error_of<DataError>([&] { FaceDetector d(o); });
  EXPECT_NE(msg.find("/nonexistent/cascade.xml: face cascade file not found"), std::string::npos) << msg;
}

TEST(FaceDetector, ForeignCascadeFileIsAClearError) {
  TempDir dir;
  const auto path = dir.file("not_a_cascade.xml");
  const std::string text = "<?xml version=\"1.0\"?>\n<opencv_storage><x>1</x></opencv_storage>\n";
  test::write_bytes(path, std::vector<uint8_t>(text.begin(), text.end()));
  FaceDetectorOptions o;
  o.detector = DetectorKind::kHaar;
  o.cascade_path = path.u8string();
  const std::string msg = error_of<DataError>([&] { FaceDetector d(o); });
  EXPECT_NE(msg.find(path.u8string() + ": not"), std::string::npos) << msg;
}

TEST(FaceDetector, RejectsBadOptionsWithTheValue) {
  FaceDetectorOptions o;
  o.scale_factor = 1.0;
  EXPECT_NE(error_of<std::invalid_argument>([&] {
              FaceDetector d(o);
            }).find("scale_factor must be in (1, 2], got 1.0"),
            std::string::npos);
  o = {};
  o.min_neighbors = -1;
  EXPECT_NE(error_of<std::invalid_argument>([&] { FaceDetector d(o); }).find("got -1"), std::string::npos);
  o = {};
  o.min_face_size = 100;
  o.max_face_size = 50;
  EXPECT_NE(error_of<std::invalid_argument>([&] { FaceDetector d(o); }).find("got 100 and 50"),
            std::string::npos);
  o = {};
  o.max_detect_side = 10;
  EXPECT_NE(error_of<std::invalid_argument>([&] { FaceDetector d(o); }).find("got 10"), std::string::npos);
}

TEST(FaceDetector, NoFaceOnTheFaceFreeFixture) {
  // A crop of the backdrop of samples/astronaut.png (shuttle model, curtain): textures, no face.
  const cv::Mat img = read_image((test::fixtures_dir() / "no_face_astronaut_backdrop.jpg").u8string());
  ASSERT_EQ(img.size(), cv::Size(212, 300));
  for (const auto kind : {DetectorKind::kBlazeFace, DetectorKind::kHaar}) {
    SCOPED_TRACE(detector_kind_name(kind));
    FaceDetectorOptions o;
    o.detector = kind;
    const FaceDetector detector(o);
    EXPECT_EQ(detector.detect(img).size(), 0u);
    // Gray input and a 4x upscale (so every window size is scanned): still none.
    cv::Mat gray, big;
    cv::cvtColor(img, gray, cv::COLOR_BGR2GRAY);
    cv::resize(gray, big, cv::Size(), 4, 4, cv::INTER_LINEAR);
    EXPECT_EQ(detector.detect(gray).size(), 0u);
    EXPECT_EQ(detector.detect(big).size(), 0u);
  }
}

TEST(FaceDetector, NoFaceOnSyntheticImages) {
  for (const auto kind : {DetectorKind::kBlazeFace, DetectorKind::kHaar}) {
  SCOPED_TRACE(detector_kind_name(kind));
  FaceDetectorOptions o;
  o.detector = kind;
  const FaceDetector detector(o);
  cv::Mat gradient(480, 640, CV_8UC1);
  for (int y = 0; y < 480; ++y) {
    for (int x = 0; x < 640; ++x) gradient.at<uint8_t>(y, x) = static_cast<uint8_t>((x + y) * 255 / 1118);
  }
  EXPECT_TRUE(detector.detect(gradient).empty());
  EXPECT_TRUE(detector.detect(cv::Mat(480, 640, CV_8UC3, cv::Scalar(30, 90, 200))).empty());
  EXPECT_TRUE(detector.detect(cv::Mat(10, 10, CV_8UC1, cv::Scalar(0))).empty()) << "smaller than any face";
  EXPECT_THROW(detector.detect(cv::Mat()), std::invalid_argument);
  EXPECT_THROW(detector.detect(cv::Mat(10, 10, CV_16UC1)), std::invalid_argument);
  }
}

TEST(LandmarkAligner, MissingOrForeignModelFileNamesIt) {
  std::string msg = error_of<DataError>([&] { LandmarkAligner a("/nonexistent/sp68.dat"); });
  EXPECT_NE(msg.find("/nonexistent/sp68.dat: landmark model not found"), std::string::npos) << msg;
  TempDir dir;
  const auto path = dir.file("garbage.dat");
  test::write_bytes(path, std::vector<uint8_t>(1000, 0x5A));
  msg = error_of<DataError>([&] { LandmarkAligner a(path.u8string()); });
  EXPECT_NE(msg.find(path.u8string() + ": not a dlib shape predictor"), std::string::npos) << msg;
}

TEST(FacePipeline, NoFacesGivesAnEmptyListAndPrepareWorksOnAGivenBox) {
  const FacePipeline pipeline;  // no alignment: the landmark model is not loaded
  EXPECT_EQ(pipeline.aligner(), nullptr);
  const cv::Mat img = read_image((test::fixtures_dir() / "no_face_astronaut_backdrop.jpg").u8string());
  EXPECT_TRUE(pipeline.run(img).empty());
  const PreparedFace f = pipeline.prepare(img, cv::Rect(50, 50, 100, 100));
  EXPECT_EQ(f.face.size(), cv::Size(48, 48));
  EXPECT_EQ(f.face.type(), CV_8UC1);
  EXPECT_TRUE(f.landmarks.empty());
  // The same as calling the one preprocessing function directly.
  EXPECT_EQ(
      cv::norm(f.face, preprocess_face(img, cv::Rect(50, 50, 100, 100), PreprocessOptions{}), cv::NORM_INF),
      0.0);
}

}  // namespace
}  // namespace fervid
