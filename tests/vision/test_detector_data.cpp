// The face detectors on real photos (label `data`): every hand-annotated face of
// $FERVID_DATA/faces (tests/fixtures/face_annotations.json), the video-call galleries composed
// from them, and the cross-dataset face crops of $FERVID_DATA/xds, where a face must be found in
// nearly every image. bench/bench_detector prints the same counts with timings.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "fervid/detection_eval.h"
#include "fervid/image_io.h"
#include "fervid/vision.h"
#include "vision_test_util.h"

namespace fervid {
namespace {

const FaceAnnotations& annotations() {
  static const FaceAnnotations a = read_face_annotations((test::fixtures_dir() / "face_annotations.json").string());
  return a;
}

cv::Mat read_face_photo(const std::string& name) {
  return read_image((test::shared_data_dir() / "faces" / name).string());
}

DetectionCounts count_photos(const FaceDetector& d) {
  DetectionCounts c;
  for (const auto& img : annotations().images) c.add(img, d.detect(read_face_photo(img.name)));
  return c;
}

FaceDetectorOptions haar_options() {
  FaceDetectorOptions o;
  o.detector = DetectorKind::kHaar;
  return o;
}

TEST(DetectorData, BlazeFaceFindsEveryFrontalFaceOfThePhotosAndMoreThanHaar) {
  ASSERT_EQ(annotations().images.size(), 26u);
  const DetectionCounts blaze = count_photos(FaceDetector());
  const DetectionCounts haar = count_photos(FaceDetector(haar_options()));
  std::cout << "BlazeFace: " << blaze.to_json().dump() << "\nHaar: " << haar.to_json().dump() << "\n";
  ASSERT_EQ(blaze.faces, 33);
  const auto frontal = blaze.by_tag.at("frontal");
  EXPECT_EQ(frontal.first, frontal.second) << "a frontal face was missed";
  EXPECT_GE(blaze.precision(), 0.95);
  // The three faces left are background faces cut by the border, 11-35 px visible.
  EXPECT_GE(blaze.recall(), 0.9);
  EXPECT_GT(blaze.found, haar.found);
  EXPECT_GT(blaze.by_tag.at("partial").first, haar.by_tag.at("partial").first);
}

TEST(DetectorData, GalleriesShowEveryFrontalFaceOf40PixelsOrMore) {
  const FaceDetector detector;
  ASSERT_FALSE(annotations().galleries.empty());
  for (const auto& g : annotations().galleries) {
    SCOPED_TRACE(g.name);
    AnnotatedImage truth;
    const cv::Mat frame = compose_gallery(g, annotations(), read_face_photo, &truth);
    const auto boxes = detector.detect(frame);
    std::vector<cv::Rect> truth_boxes;
    for (const auto& f : truth.faces) truth_boxes.push_back(f.box);
    const FaceMatch m = match_faces(boxes, truth_boxes);
    int frontal = 0, missed = 0;
    for (size_t i = 0; i < truth.faces.size(); ++i) {
      const auto& f = truth.faces[i];
      if (!f.has("frontal") || f.has("small")) continue;
      ++frontal;
      if (m.truth_match[i] < 0) {
        ++missed;
        ADD_FAILURE() << "missed the frontal face at " << f.box;
      }
    }
    EXPECT_GT(frontal, 5);
    int false_faces = 0;
    for (int t : m.detection_match) false_faces += t < 0;
    EXPECT_LE(false_faces, 1) << "detections that are no annotated face";
  }
}

TEST(DetectorData, AFaceIsFoundInNearlyEveryCrossDatasetCrop) {
  const FaceDetector detector;
  for (const char* set : {"diffusionfer", "muxspace"}) {
    int images = 0, with_face = 0;
    for (const auto& e : std::filesystem::recursive_directory_iterator(test::shared_data_dir() / "xds" / set)) {
      if (!e.is_regular_file() || e.path().extension() == ".md") continue;
      ++images;
      with_face += !detector.detect(read_image(e.path().string())).empty();
    }
    std::cout << set << ": a face in " << with_face << " of " << images << " images\n";
    EXPECT_GT(images, 900) << set;
    EXPECT_GE(with_face, 0.98 * images) << set;
  }
}

}  // namespace
}  // namespace fervid
