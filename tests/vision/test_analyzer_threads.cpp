// Analyzer's documented thread safety (analyzer.h): several threads calling analyze(),
// analyze_whole(), analyze_boxes() and detect() on ONE Analyzer at the same time get exactly what
// sequential calls give, with and without alignment; FaceDetector lends each concurrent call its
// own cascade and loads no second one for sequential calls. The shipped model (real predictions,
// not a near-uniform random net) on the demo portrait, a two-face frame and a face-free photo.
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "fervid/analyzer.h"
#include "vision_test_util.h"

namespace fervid {
namespace {

constexpr int kThreads = 4;
constexpr int kRounds = 3;

std::string shipped_model() { return std::string(FERVID_EXAMPLES_DIR) + "/../models/" + kDefaultModelName; }

// The inputs: the portrait; two faces side by side; the face-free backdrop; and face crops for
// analyze_whole (the portrait's face, its mirror, a darker copy).
struct Inputs {
  std::vector<cv::Mat> images;
  std::vector<cv::Mat> crops;
};

const Inputs& inputs() {
  static const Inputs in = [] {
    Inputs r;
    const cv::Mat portrait = read_image(std::string(FERVID_EXAMPLES_DIR) + "/astronaut.png");
    if (portrait.empty()) throw std::runtime_error("cannot read the demo portrait");
    r.images.push_back(portrait);
    cv::Mat two(300, 420, CV_8UC3, cv::Scalar(90, 100, 110));
    const cv::Mat face = portrait(cv::Rect(128, 20, 180, 180));
    face.copyTo(two(cv::Rect(20, 60, 180, 180)));
    cv::Mat mirrored;
    cv::flip(face, mirrored, 1);
    mirrored.copyTo(two(cv::Rect(220, 60, 180, 180)));
    r.images.push_back(two);
    r.images.push_back(read_image((test::fixtures_dir() / "no_face_astronaut_backdrop.jpg").u8string()));
    const cv::Mat crop = portrait(cv::Rect(178, 69, 92, 92)).clone();
    cv::Mat flipped, darker;
    cv::flip(crop, flipped, 1);
    crop.convertTo(darker, -1, 0.7, 0);
    r.crops = {crop, flipped, darker};
    return r;
  }();
  return in;
}

// Bit-for-bit: the same computation on the same bytes must give the same floats.
void expect_same(const FaceExpression& a, const FaceExpression& b, const std::string& what) {
  EXPECT_EQ(a.box, b.box) << what;
  EXPECT_EQ(a.label, b.label) << what;
  EXPECT_EQ(a.label_name, b.label_name) << what;
  EXPECT_EQ(a.confidence, b.confidence) << what;
  EXPECT_EQ(a.probs, b.probs) << what;
  ASSERT_EQ(a.landmarks.size(), b.landmarks.size()) << what;
  for (size_t i = 0; i < a.landmarks.size(); ++i) EXPECT_EQ(a.landmarks[i], b.landmarks[i]) << what << " point " << i;
}

struct Results {
  std::vector<std::vector<FaceExpression>> analyzed;  // per image
  std::vector<std::vector<cv::Rect>> detected;        // per image
  std::vector<FaceExpression> whole;                  // per crop
  std::vector<std::vector<FaceExpression>> boxed;     // per image: analyze_boxes on its detections
};

Results sequential(const Analyzer& a) {
  Results r;
  for (const auto& img : inputs().images) {
    r.analyzed.push_back(a.analyze(img));
    r.detected.push_back(a.detect(img));
    r.boxed.push_back(a.analyze_boxes(img, r.detected.back()));
  }
  for (const auto& c : inputs().crops) r.whole.push_back(a.analyze_whole(c));
  return r;
}

// kThreads threads, each doing kRounds passes over every input in its own order, all at once;
// every answer is compared with the sequential one.
void expect_concurrent_calls_match(const Analyzer& a, const Results& want) {
  const auto& in = inputs();
  std::vector<Results> got(kThreads);
  std::atomic<int> ready{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      ready.fetch_add(1);
      while (ready.load() < kThreads) std::this_thread::yield();  // start together
      try {
        for (int round = 0; round < kRounds; ++round) {
          for (size_t k = 0; k < in.images.size(); ++k) {
            const size_t i = (k + static_cast<size_t>(t + round)) % in.images.size();
            const auto faces = a.analyze(in.images[i]);
            const auto boxes = a.detect(in.images[i]);
            const auto boxed = a.analyze_boxes(in.images[i], want.detected[i]);
            const size_t c = (k + static_cast<size_t>(t)) % in.crops.size();
            const auto whole = a.analyze_whole(in.crops[c]);
            // Kept per thread and compared on the main thread (gtest's EXPECT is thread-safe on
            // POSIX, but one place to read the failures is clearer).
            got[static_cast<size_t>(t)].analyzed.push_back(faces);
            got[static_cast<size_t>(t)].detected.push_back(boxes);
            got[static_cast<size_t>(t)].boxed.push_back(boxed);
            got[static_cast<size_t>(t)].whole.push_back(whole);
          }
        }
      } catch (const std::exception& e) {
        failures.fetch_add(1);
        ADD_FAILURE() << "thread " << t << ": " << e.what();
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(failures.load(), 0);
  for (int t = 0; t < kThreads; ++t) {
    const auto& g = got[static_cast<size_t>(t)];
    ASSERT_EQ(g.analyzed.size(), static_cast<size_t>(kRounds) * in.images.size());
    size_t n = 0;
    for (int round = 0; round < kRounds; ++round) {
      for (size_t k = 0; k < in.images.size(); ++k, ++n) {
        const size_t i = (k + static_cast<size_t>(t + round)) % in.images.size();
        const size_t c = (k + static_cast<size_t>(t)) % in.crops.size();
        const std::string what = "thread " + std::to_string(t) + " round " + std::to_string(round) + " image " +
                                 std::to_string(i);
        EXPECT_EQ(g.detected[n], want.detected[i]) << what;
        ASSERT_EQ(g.analyzed[n].size(), want.analyzed[i].size()) << what;
        for (size_t f = 0; f < want.analyzed[i].size(); ++f)
          expect_same(g.analyzed[n][f], want.analyzed[i][f], what + " analyze face " + std::to_string(f));
        ASSERT_EQ(g.boxed[n].size(), want.boxed[i].size()) << what;
        for (size_t f = 0; f < want.boxed[i].size(); ++f)
          expect_same(g.boxed[n][f], want.boxed[i][f], what + " analyze_boxes face " + std::to_string(f));
        expect_same(g.whole[n], want.whole[c], what + " analyze_whole crop " + std::to_string(c));
      }
    }
  }
}

TEST(AnalyzerThreads, ConcurrentCallsGiveTheSequentialResults) {
  AnalyzerOptions o;
  o.recipe.set("detector", "haar");  // the cascade pool is what runs concurrently here, whatever the model's recipe
  const Analyzer analyzer(shipped_model(), o);
  const Results want = sequential(analyzer);
  // The inputs exercise what they should: one face, two faces, none.
  ASSERT_EQ(want.analyzed[0].size(), 1u);
  ASSERT_EQ(want.analyzed[1].size(), 2u);
  ASSERT_EQ(want.analyzed[2].size(), 0u);
  EXPECT_EQ(analyzer.pipeline().detector().cascades_loaded(), 1) << "sequential calls share one cascade";
  expect_concurrent_calls_match(analyzer, want);
  const int loaded = analyzer.pipeline().detector().cascades_loaded();
  EXPECT_GE(loaded, 1);
  EXPECT_LE(loaded, kThreads) << "at most one cascade per concurrent caller";
}

TEST(AnalyzerThreads, ConcurrentCallsWithAlignmentGiveTheSequentialResults) {
  AnalyzerOptions o;
  o.recipe.set("detector", "haar");
  o.recipe.set("align", true);  // with dlib's 68 landmarks (Haar boxes have no keypoints)
  const Analyzer analyzer(shipped_model(), o);
  const Results want = sequential(analyzer);
  ASSERT_EQ(want.analyzed[1].size(), 2u);
  ASSERT_EQ(want.analyzed[1][0].landmarks.size(), 68u) << "aligned: landmarks come back";
  expect_concurrent_calls_match(analyzer, want);
}

TEST(AnalyzerThreads, DetectorRejectsScanOptionsForAnotherCascade) {
  FaceDetectorOptions haar;
  haar.detector = DetectorKind::kHaar;
  const FaceDetector detector(haar);
  FaceDetectorOptions scan;
  scan.cascade_path = "/usr/share/opencv4/lbpcascades/lbpcascade_frontalface.xml";
  try {
    detector.detect(inputs().images[0], scan);
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("lbpcascade_frontalface.xml"), std::string::npos) << e.what();
  }
  scan.cascade_path.clear();
  scan.min_neighbors = -2;
  EXPECT_THROW(detector.detect(inputs().images[0], scan), std::invalid_argument);
  // Per-call settings equal to the detector's own give the same boxes.
  scan = detector.options();
  EXPECT_EQ(detector.detect(inputs().images[1], scan), detector.detect(inputs().images[1]));
  scan.cascade_path.clear();
  EXPECT_EQ(detector.detect(inputs().images[1], scan), detector.detect(inputs().images[1]));
}

}  // namespace
}  // namespace fervid
