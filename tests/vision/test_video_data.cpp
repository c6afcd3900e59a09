// The video scan settings (FaceDetectorOptions::video(), VideoOptions::scan's default) on real
// images (ctest label `data`, FERVID_DATA): every hand-annotated face of the example photos is
// found as the photo defaults find it, and on the Hamilton clip they keep most of what the photo
// scan finds, with few boxes of their own. What they trade for ~4x less time is documented in
// vision.h and measured by bench/bench_video.cpp (BM_*ScanPhotoVsVideo).
#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include <cstdio>
#include <fstream>

#include "fervid/vision.h"
#include "vision_test_util.h"

namespace fervid {
namespace {

namespace fs = std::filesystem;

TEST(VideoScanData, FindsEveryHandAnnotatedFace) {
  std::ifstream in(test::fixtures_dir() / "face_boxes.json");
  ASSERT_TRUE(in) << "tests/fixtures/face_boxes.json";
  const auto boxes = nlohmann::json::parse(in).at("images");
  ASSERT_GE(boxes.size(), 8u);
  const FaceDetector detector;
  const FaceDetectorOptions video = FaceDetectorOptions::video();
  const fs::path dir = test::shared_data_dir() / "faces" / "face_recognition" / "examples";
  for (const auto& [name, faces] : boxes.items()) {
    SCOPED_TRACE(name);
    const cv::Mat img = read_image((dir / name).u8string());
    const auto found = detector.detect(img, video);
    test::expect_matches_annotation(name, img, found, faces);
  }
}

TEST(VideoScanData, KeepsMostOfWhatThePhotoScanFindsOnTheClip) {
  const fs::path clip = test::shared_data_dir() / "faces" / "videos" / "face_recognition_short_hamilton_clip.mp4";
  cv::VideoCapture cap(clip.string(), cv::CAP_FFMPEG);
  ASSERT_TRUE(cap.isOpened()) << clip;
  const FaceDetector detector;
  const FaceDetectorOptions video = FaceDetectorOptions::video();
  int frames = 0, photo_boxes = 0, matched = 0, own = 0;
  cv::Mat frame;
  for (int i = 0; cap.read(frame); ++i) {
    if (i % 5 != 0) continue;  // 55 of the 275 frames
    ++frames;
    const auto photo = detector.detect(frame);
    const auto fast = detector.detect(frame, video);
    photo_boxes += static_cast<int>(photo.size());
    for (const auto& r : photo) {
      double best = 0;
      for (const auto& q : fast) best = std::max(best, box_iou(r, q));
      matched += best >= 0.3;
    }
    for (const auto& q : fast) {
      double best = 0;
      for (const auto& r : photo) best = std::max(best, box_iou(r, q));
      own += best < 0.3;
    }
  }
  ASSERT_EQ(frames, 55);
  ASSERT_GE(photo_boxes, 30) << "the clip has faces on most frames";
  const double kept = static_cast<double>(matched) / photo_boxes;
  std::printf("  %d frames: photo scan %d boxes, video scan keeps %d (%.0f%%) and adds %d\n", frames, photo_boxes,
              matched, 100 * kept, own);
  // Measured: 77% kept over all 275 frames (the faces it misses are small or very dark), 4 boxes
  // of its own in 92 frames.
  EXPECT_GE(kept, 0.7);
  EXPECT_LE(own, frames / 8);
}

}  // namespace
}  // namespace fervid
