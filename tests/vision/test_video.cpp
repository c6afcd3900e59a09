// VideoSession on synthetic videos: the demo portrait's face pasted on a textured background and
// moved a few pixels per frame. Track ids stay stable, template matching follows the face
// between detections, local detection finds it between full scans, tracks end after max_missed
// and at scene cuts, the smoothing is the EMA to the float, the timeline adds up, and bad
// options or frames are errors with their values. A tiny random model (width 0.125) stands in
// for a trained one: the arithmetic does not care what it predicts.
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <cmath>
#include <limits>
#include <numeric>

#include "fervid/model_io.h"
#include "fervid/video.h"
#include "vision_test_util.h"

namespace fervid {
namespace {

using test::TempDir;

template <typename F>
std::string invalid_argument_of(F&& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "<nothing thrown>";
}

// The portrait (512 x 512; its face is near (178, 69), 92 x 92) cropped around the face.
const cv::Mat& face_crop() {
  static const cv::Mat crop = [] {
    const std::string path = std::string(FERVID_EXAMPLES_DIR) + "/astronaut.png";
    const cv::Mat image = cv::imread(path, cv::IMREAD_COLOR);
    if (image.empty()) throw std::runtime_error("cannot read " + path);
    return image(cv::Rect(128, 20, 180, 180)).clone();
  }();
  return crop;
}

// A 400 x 300 background: a gentle gradient with a fixed texture, so that a face template does
// not match it anywhere. `brightness` shifts it (a different shot).
cv::Mat background(int brightness = 0) {
  cv::Mat bg(300, 400, CV_8UC3);
  for (int y = 0; y < bg.rows; ++y)
    for (int x = 0; x < bg.cols; ++x) {
      const int texture = ((x * 7 + y * 13) % 23) * 2 + ((x / 5 + y / 3) % 2) * 10;
      const int v = std::clamp(60 + x / 8 + y / 10 + texture + brightness, 0, 255);
      bg.at<cv::Vec3b>(y, x) = cv::Vec3b(static_cast<uchar>(v), static_cast<uchar>(v + 5 > 255 ? 255 : v + 5),
                                         static_cast<uchar>(v));
    }
  return bg;
}

// `bg` with the face crop pasted at `at` (its top-left corner).
cv::Mat with_face(cv::Mat bg, cv::Point at) {
  face_crop().copyTo(bg(cv::Rect(at, face_crop().size())));
  return bg;
}

// 640 x 300: the background, and its left 240 columns again on the right (room for two faces).
cv::Mat wide_background() {
  cv::Mat wide(300, 640, CV_8UC3);
  const cv::Mat bg = background();
  bg.copyTo(wide(cv::Rect(0, 0, 400, 300)));
  bg(cv::Rect(0, 0, 240, 300)).copyTo(wide(cv::Rect(400, 0, 240, 300)));
  return wide;
}

cv::Point2d center(const cv::Rect& r) { return {r.x + r.width / 2.0, r.y + r.height / 2.0}; }

class Video : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir;
    torch::manual_seed(3);
    ModelConfig c;
    c.width = 0.125;
    c.input_size = 48;
    MCSANet net(c);
    net->eval();
    model_ = (dir_->path() / "tiny.fervid").string();
    save_model(model_, net, {{"made_by", "test_video"}});
    AnalyzerOptions options;  // these tests follow the cascade's boxes and scan settings
    options.faces = FacePipelineOptions{};
    options.faces->detector.detector = DetectorKind::kHaar;
    analyzer_ = new Analyzer(model_, options);
    // Where the detector puts the face in a frame with the crop at (0, 0): the truth for a
    // crop at p is that box moved by p.
    const auto boxes = analyzer_->detect(with_face(background(), {0, 0}));
    ASSERT_EQ(boxes.size(), 1u) << "the detector must find the portrait's face";
    face_at_origin_ = boxes[0];
  }
  static void TearDownTestSuite() {
    delete analyzer_;
    delete dir_;
  }
  static cv::Rect truth(cv::Point at) { return face_at_origin_ + at; }

  static TempDir* dir_;
  static std::string model_;
  static Analyzer* analyzer_;
  static cv::Rect face_at_origin_;
};
TempDir* Video::dir_ = nullptr;
std::string Video::model_;
Analyzer* Video::analyzer_ = nullptr;
cv::Rect Video::face_at_origin_;

TEST(VideoOptions, RejectsOutOfRangeValuesNamingTheField) {
  auto error = [](auto change) {
    VideoOptions o;
    change(o);
    return invalid_argument_of([&] { o.validate(); });
  };
  EXPECT_NE(error([](VideoOptions& o) { o.detect_every = 0; }).find("detect_every must be >= 1, got 0"),
            std::string::npos);
  EXPECT_NE(
      error([](VideoOptions& o) { o.full_scan_every = -2; }).find("full_scan_every must be >= 1, got -2"),
      std::string::npos);
  EXPECT_NE(error([](VideoOptions& o) { o.min_hits = 0; }).find("min_hits must be >= 1, got 0"),
            std::string::npos);
  EXPECT_NE(error([](VideoOptions& o) { o.smoothing = 1.0; }).find("smoothing must be in [0, 1), got 1"),
            std::string::npos);
  EXPECT_NE(error([](VideoOptions& o) { o.smoothing = -0.1; }).find("smoothing must be in [0, 1), got -0.1"),
            std::string::npos);
  EXPECT_NE(
      error([](VideoOptions& o) { o.smoothing = std::nan(""); }).find("smoothing must be in [0, 1), got nan"),
      std::string::npos);
  EXPECT_NE(error([](VideoOptions& o) { o.match_iou = 0; }).find("match_iou must be in (0, 1], got 0"),
            std::string::npos);
  EXPECT_NE(error([](VideoOptions& o) { o.max_missed = -1; }).find("max_missed must be >= 0, got -1"),
            std::string::npos);
  EXPECT_NE(
      error([](VideoOptions& o) { o.cut_threshold = 1.5; }).find("cut_threshold must be in [0, 1], got 1.5"),
      std::string::npos);
  EXPECT_NE(
      error([](VideoOptions& o) { o.search_margin = 0; }).find("search_margin must be in (0, 2], got 0"),
      std::string::npos);
  EXPECT_NE(
      error([](VideoOptions& o) { o.follow_patch = 4; }).find("follow_patch must be in [8, 256], got 4"),
      std::string::npos);
  EXPECT_NE(error([](VideoOptions& o) {
              o.min_follow_score = 2;
            }).find("min_follow_score must be in [-1, 1], got 2"),
            std::string::npos);
  EXPECT_NE(error([](VideoOptions& o) { o.max_tracks = 0; }).find("max_tracks must be in [1, 10000], got 0"),
            std::string::npos);
  EXPECT_EQ(error([](VideoOptions&) {}), "<nothing thrown>");
}

TEST(EmaSmooth, ZeroIsRawAndOtherWeightsGiveTheEma) {
  std::vector<float> s;
  ema_smooth(s, {0.2f, 0.8f}, 0.6);
  EXPECT_EQ(s, (std::vector<float>{0.2f, 0.8f}));  // the first frame is taken as it is
  std::vector<float> raw;
  for (const auto& p : {std::vector<float>{1, 0}, {0, 1}, {0.5f, 0.5f}}) {
    ema_smooth(raw, p, 0.0);
    EXPECT_EQ(raw, p);
  }
  // a = 0.6: (1, 0) -> (0, 1) gives (0.6, 0.4); again (0, 1): (0.36, 0.64); then (1, 0): (0.616, 0.384).
  s.clear();
  ema_smooth(s, {1, 0}, 0.6);
  ema_smooth(s, {0, 1}, 0.6);
  EXPECT_NEAR(s[0], 0.6, 1e-7);
  EXPECT_NEAR(s[1], 0.4, 1e-7);
  ema_smooth(s, {0, 1}, 0.6);
  EXPECT_NEAR(s[0], 0.36, 1e-7);
  EXPECT_NEAR(s[1], 0.64, 1e-7);
  ema_smooth(s, {1, 0}, 0.6);
  EXPECT_NEAR(s[0], 0.616, 1e-6);
  EXPECT_NEAR(s[1], 0.384, 1e-6);
  EXPECT_NE(invalid_argument_of([&] {
              ema_smooth(s, {1, 0, 0}, 0.6);
            }).find("2 smoothed values but 3 probabilities"),
            std::string::npos);
  EXPECT_NE(invalid_argument_of([&] { ema_smooth(s, {1, 0}, 1.0); }).find("got 1"), std::string::npos);
}

TEST_F(Video, IdsStayStableWhileTheFaceMoves) {
  VideoOptions o;
  o.min_hits = 1;
  VideoSession session(*analyzer_, o);
  const cv::Mat bg = background();
  for (int t = 0; t < 10; ++t) {
    const cv::Point at(40 + 5 * t, 30 + 3 * t);
    const auto faces = session.process(with_face(bg.clone(), at), t / 30.0);
    ASSERT_EQ(faces.size(), 1u) << "frame " << t;
    EXPECT_EQ(faces[0].id, 1) << "frame " << t;
    EXPECT_TRUE(faces[0].detected) << "frame " << t;
    EXPECT_GE(box_iou(faces[0].box, truth(at)), 0.5)
        << "frame " << t << ": " << faces[0].box << " vs " << truth(at);
  }
  EXPECT_EQ(session.timelines().size(), 1u);
  EXPECT_EQ(session.active_tracks(), 1);
  EXPECT_EQ(session.stats().detection_frames, 10);
}

TEST_F(Video, FollowsTheFaceBetweenDetections) {
  VideoOptions o;
  o.detect_every = 5;
  o.min_hits = 1;
  VideoSession session(*analyzer_, o);
  const cv::Mat bg = background();
  auto place = [](int t) { return cv::Point(40 + 6 * t, 30 + 6 * t); };
  // Staying put would not pass: after 4 frames the face has moved out of its old box.
  ASSERT_LT(box_iou(truth(place(0)), truth(place(4))), 0.5);
  for (int t = 0; t < 15; ++t) {
    const auto faces = session.process(with_face(bg.clone(), place(t)), t / 30.0);
    ASSERT_EQ(faces.size(), 1u) << "frame " << t;
    EXPECT_EQ(faces[0].id, 1) << "frame " << t;
    EXPECT_EQ(faces[0].detected, t % 5 == 0) << "frame " << t;
    const cv::Rect want = truth(place(t));
    EXPECT_GE(box_iou(faces[0].box, want), 0.5) << "frame " << t << ": " << faces[0].box << " vs " << want;
    if (!faces[0].detected) {
      // Followed: the box moved with the face, to within a few pixels.
      const cv::Rect from = truth(place(t - t % 5));  // the detection it was followed from
      const auto c = center(faces[0].box), w = center(want), moved = center(faces[0].box) - center(from);
      EXPECT_LE(std::hypot(c.x - w.x, c.y - w.y), 4.0) << "frame " << t << ": moved by " << moved;
    }
  }
  EXPECT_EQ(session.stats().detection_frames, 3);
}

// Tracks are capped: with room for one, two faces in the frame give one track; the other face
// gets one when the first leaves.
TEST_F(Video, TracksAreCappedAndTheCapFreesWhenATrackEnds) {
  VideoOptions o;
  o.min_hits = 1;
  o.max_tracks = 1;
  o.max_missed = 0;
  VideoSession session(*analyzer_, o);
  const cv::Mat wide = wide_background();
  cv::Mat both = wide.clone();
  face_crop().copyTo(both(cv::Rect(cv::Point(20, 40), face_crop().size())));
  face_crop().copyTo(both(cv::Rect(cv::Point(440, 60), face_crop().size())));
  for (int t = 0; t < 3; ++t) {
    EXPECT_EQ(session.process(both, t / 30.0).size(), 1u) << "frame " << t;
    EXPECT_EQ(session.active_tracks(), 1);
  }
  cv::Mat right = wide.clone();  // the first face (the left one, found first or not) may leave
  face_crop().copyTo(right(cv::Rect(cv::Point(440, 60), face_crop().size())));
  cv::Mat left = wide.clone();
  face_crop().copyTo(left(cv::Rect(cv::Point(20, 40), face_crop().size())));
  // Whichever face holds the track, show only the other one until it is tracked.
  const int tracked_x = session.process(both, 0.1).at(0).box.x;
  const cv::Mat& other = tracked_x < 320 ? right : left;
  std::vector<TrackedFace> faces;
  for (int t = 0; t < 4 && faces.empty(); ++t) faces = session.process(other, 0.2 + t / 30.0);
  ASSERT_EQ(faces.size(), 1u) << "the other face got the freed track";
  EXPECT_EQ(faces[0].id, 2);
  EXPECT_EQ((faces[0].box.x < 320), !(tracked_x < 320));
}

TEST_F(Video, LocalDetectionBetweenFullScansAndNewFacesOnFullScans) {
  VideoOptions o;
  o.full_scan_every = 4;
  o.min_hits = 1;
  VideoSession session(*analyzer_, o);
  // A second face enters at frame 2 on the right; it may only be found at the full scan of frame 4.
  const cv::Mat wide = wide_background();
  for (int t = 0; t < 9; ++t) {
    cv::Mat frame = wide.clone();
    const cv::Point at(20 + 4 * t, 40 + 2 * t);
    face_crop().copyTo(frame(cv::Rect(at, face_crop().size())));
    if (t >= 2) face_crop().copyTo(frame(cv::Rect(cv::Point(440, 60), face_crop().size())));
    const auto faces = session.process(frame, t / 30.0);
    ASSERT_EQ(faces.size(), t < 4 ? 1u : 2u) << "frame " << t;
    EXPECT_EQ(faces[0].id, 1);
    EXPECT_TRUE(faces[0].detected) << "frame " << t << ": found by the local detection";
    EXPECT_GE(box_iou(faces[0].box, truth(at)), 0.5) << "frame " << t;
    if (faces.size() == 2) {
      EXPECT_EQ(faces[1].id, 2);
      EXPECT_TRUE(faces[1].detected);
      EXPECT_GE(box_iou(faces[1].box, truth({440, 60})), 0.5) << "frame " << t;
    }
  }
  EXPECT_EQ(session.stats().detection_frames, 9);
  EXPECT_EQ(session.stats().full_scans, 3);  // frames 0, 4, 8
}

TEST_F(Video, SmoothedProbabilitiesAreTheEmaOfTheRawOnes) {
  const cv::Mat bg = background();
  for (const double a : {0.0, 0.7}) {
    VideoOptions o;
    o.smoothing = a;
    o.min_hits = 1;
    o.detect_every = 2;
    VideoSession session(*analyzer_, o);
    std::vector<float> expect;
    for (int t = 0; t < 6; ++t) {
      const auto faces = session.process(with_face(bg.clone(), {40 + 4 * t, 40}), t / 30.0);
      ASSERT_EQ(faces.size(), 1u) << "frame " << t;
      const auto& f = faces[0];
      ASSERT_EQ(f.raw.probs.size(), 7u);
      if (expect.empty()) {
        expect = f.raw.probs;
      } else {
        for (size_t k = 0; k < expect.size(); ++k)
          expect[k] = static_cast<float>(a * expect[k] + (1 - a) * f.raw.probs[k]);
      }
      for (size_t k = 0; k < expect.size(); ++k)
        EXPECT_NEAR(f.smoothed[k], expect[k], 1e-6) << "a " << a << " frame " << t;
      if (a == 0.0) {
        EXPECT_EQ(f.smoothed, f.raw.probs);
      }
      const int label =
          static_cast<int>(std::max_element(f.smoothed.begin(), f.smoothed.end()) - f.smoothed.begin());
      EXPECT_EQ(f.label, label);
      EXPECT_EQ(f.label_name, analyzer_->class_names()[static_cast<size_t>(label)]);
      EXPECT_FLOAT_EQ(f.confidence, f.smoothed[static_cast<size_t>(label)]);
      EXPECT_EQ(f.raw.box, f.box);
    }
  }
}

TEST_F(Video, TracksEndAfterMaxMissedAndIdsAreNeverReused) {
  VideoOptions o;
  o.full_scan_every = 1;  // the face must be found again on any frame it comes back
  o.max_missed = 2;
  o.min_hits = 2;
  o.cut_threshold = 0;  // the face is a quarter of the frame: its leaving would count as a cut
  VideoSession session(*analyzer_, o);
  const cv::Mat bg = background();
  const cv::Point at(60, 50);
  int t = 0;
  auto step = [&](bool face) {
    return session.process(face ? with_face(bg.clone(), at) : bg.clone(), t++ / 30.0);
  };
  EXPECT_TRUE(step(true).empty());  // tentative: one detection is not enough
  auto faces = step(true);
  ASSERT_EQ(faces.size(), 1u);
  EXPECT_EQ(faces[0].id, 1);
  // The face is gone: not followed onto the background, ended after 2 + 1 misses.
  for (int k = 0; k < 2; ++k) {
    EXPECT_TRUE(step(false).empty());
    EXPECT_EQ(session.active_tracks(), 1);
  }
  EXPECT_TRUE(step(false).empty());
  EXPECT_EQ(session.active_tracks(), 0);
  EXPECT_FALSE(session.timelines().at(0).active);
  // It comes back: a new track, a new id.
  EXPECT_TRUE(step(true).empty());
  faces = step(true);
  ASSERT_EQ(faces.size(), 1u);
  EXPECT_EQ(faces[0].id, 2);
  // A face seen on one frame only never shows.
  VideoSession once(*analyzer_, o);
  EXPECT_TRUE(once.process(with_face(bg.clone(), at), 0).empty());
  EXPECT_TRUE(once.process(bg, 0.1).empty());
  EXPECT_TRUE(once.process(bg, 0.2).empty());
  EXPECT_TRUE(once.timelines().empty());
}

TEST_F(Video, ASceneCutEndsEveryTrack) {
  for (const double threshold : {0.2, 0.0}) {
    VideoOptions o;
    o.min_hits = 1;
    o.detect_every = 3;
    o.cut_threshold = threshold;
    VideoSession session(*analyzer_, o);
    int last_id = 0;
    for (int t = 0; t < 6; ++t) {
      // The same face in the same place, but the shot changes at frame 4 (a much brighter scene).
      const cv::Mat frame = with_face(background(t < 4 ? 0 : 110), {50, 40});
      const auto faces = session.process(frame, t / 30.0);
      ASSERT_EQ(faces.size(), 1u) << "frame " << t;
      last_id = faces[0].id;
      if (t == 4 && threshold > 0) {
        EXPECT_TRUE(faces[0].detected) << "a cut gets a full scan";
      }
    }
    EXPECT_EQ(last_id, threshold > 0 ? 2 : 1);
    EXPECT_EQ(session.stats().cuts, threshold > 0 ? 1 : 0);
  }
}

TEST_F(Video, TimelineCountsEveryFrameAndSummarises) {
  const cv::Mat bg = background();
  for (const bool keep : {true, false}) {
    VideoOptions o;
    o.min_hits = 1;
    o.detect_every = 2;
    o.keep_entries = keep;
    VideoSession session(*analyzer_, o);
    std::vector<TrackedFace> seen;
    for (int t = 0; t < 5; ++t) {
      const auto faces = session.process(with_face(bg.clone(), {40 + 3 * t, 40}), 1.0 + t * 0.04);
      ASSERT_EQ(faces.size(), 1u);
      seen.push_back(faces[0]);
    }
    ASSERT_EQ(session.timelines().size(), 1u);
    const auto& tl = session.timelines()[0];
    EXPECT_EQ(tl.id, 1);
    EXPECT_EQ(tl.frames, 5);
    EXPECT_EQ(tl.detected_frames, 3);
    EXPECT_DOUBLE_EQ(tl.first_s, 1.0);
    EXPECT_DOUBLE_EQ(tl.last_s, 1.16);
    EXPECT_EQ(tl.first_frame, 0);
    EXPECT_EQ(tl.last_frame, 4);
    EXPECT_EQ(tl.entries.size(), keep ? 5u : 0u);
    const auto& names = analyzer_->class_names();
    if (keep) {
      for (size_t t = 0; t < 5; ++t)
        EXPECT_EQ(frame_record(1, tl.entries[t], names),
                  frame_record(seen[t], static_cast<int64_t>(t), 1.0 + t * 0.04, names));
    }
    const auto s = session.summaries().at(0);
    EXPECT_EQ(s.frames, 5);
    EXPECT_NEAR(std::accumulate(s.share.begin(), s.share.end(), 0.0), 1.0, 1e-12);
    EXPECT_NEAR(std::accumulate(s.mean_probs.begin(), s.mean_probs.end(), 0.0), 1.0, 1e-5);
    std::vector<double> mean(7, 0.0);
    std::vector<int> label_frames(7, 0);
    for (const auto& f : seen) {
      for (size_t k = 0; k < 7; ++k) mean[k] += f.raw.probs[k] / 5.0;
      ++label_frames[static_cast<size_t>(f.label)];
    }
    for (size_t k = 0; k < 7; ++k) {
      EXPECT_NEAR(s.mean_probs[k], mean[k], 1e-6);
      EXPECT_DOUBLE_EQ(s.share[k], label_frames[k] / 5.0);
    }
    EXPECT_EQ(s.dominant, static_cast<int>(std::max_element(label_frames.begin(), label_frames.end()) -
                                           label_frames.begin()));
    const auto j = to_json(s, names);
    EXPECT_EQ(j.at("track"), 1);
    EXPECT_EQ(j.at("frames"), 5);
    EXPECT_EQ(j.at("dominant"), names[static_cast<size_t>(s.dominant)]);
    EXPECT_NEAR(j.at("duration_s").get<double>(), 0.16, 1e-12);
    EXPECT_EQ(j.at("share").size(), 7u);
    const auto r = frame_record(seen[1], 1, 1.04, names);
    EXPECT_EQ(r.at("track"), 1);
    EXPECT_EQ(r.at("detected"), false);
    EXPECT_EQ(r.at("box").at("w"), seen[1].box.width);
    EXPECT_EQ(r.at("label"), seen[1].label_name);
    EXPECT_EQ(r.at("probs").size(), 7u);
    EXPECT_EQ(r.at("raw_probs").size(), 7u);
  }
}

TEST_F(Video, EntriesAreOffByDefaultAndCappedWhenKept) {
  // A library session over a long call must not grow with every frame: by default only the
  // running sums are kept; with keep_entries, the latest max_entries frames per track.
  EXPECT_FALSE(VideoOptions{}.keep_entries);
  const cv::Mat bg = background();
  for (const bool keep : {false, true}) {
    VideoOptions o;
    o.min_hits = 1;
    if (keep) {
      o.keep_entries = true;
      o.max_entries = 3;
    }
    VideoSession session(*analyzer_, o);
    std::vector<TrackedFace> seen;
    for (int t = 0; t < 7; ++t) {
      const auto faces = session.process(with_face(bg.clone(), {40 + 2 * t, 40}), t * 0.1);
      ASSERT_EQ(faces.size(), 1u) << "frame " << t;
      seen.push_back(faces[0]);
    }
    ASSERT_EQ(session.timelines().size(), 1u);
    const auto& tl = session.timelines()[0];
    EXPECT_EQ(tl.frames, 7) << "the running sums count every frame either way";
    if (!keep) {
      EXPECT_TRUE(tl.entries.empty());
      EXPECT_EQ(tl.entries_dropped, 0);
      continue;
    }
    ASSERT_EQ(tl.entries.size(), 3u);
    EXPECT_EQ(tl.entries_dropped, 4);
    const auto& names = analyzer_->class_names();
    for (size_t k = 0; k < 3; ++k) {
      const size_t t = 4 + k;  // the last three frames, oldest first
      EXPECT_EQ(tl.entries[k].frame, static_cast<int64_t>(t));
      EXPECT_EQ(frame_record(1, tl.entries[k], names),
                frame_record(seen[t], static_cast<int64_t>(t), t * 0.1, names));
    }
  }
  VideoOptions bad;
  bad.max_entries = 0;
  EXPECT_NE(invalid_argument_of([&] { bad.validate(); }).find("max_entries must be >= 1, got 0"),
            std::string::npos);
}

TEST_F(Video, WholeFramesAreScannedWithTheScanOptions) {
  // The default scan is the video one; the session uses VideoOptions::scan, not the Analyzer's
  // photo settings: a minimum face larger than the portrait's (about 92 px) finds nothing.
  const VideoOptions defaults;
  EXPECT_TRUE(defaults.scan.scale_to_min_face);
  EXPECT_EQ(defaults.scan.min_face_size, FaceDetectorOptions::video().min_face_size);
  EXPECT_EQ(defaults.full_scan_every, 1);
  const cv::Mat frame = with_face(background(), {60, 50});
  for (const int min_face : {40, 200}) {
    VideoOptions o;
    o.min_hits = 1;
    o.scan.min_face_size = min_face;
    VideoSession session(*analyzer_, o);
    const auto faces = session.process(frame, 0.0);
    ASSERT_EQ(faces.size(), min_face == 40 ? 1u : 0u) << "min face " << min_face;
    if (!faces.empty()) {
      EXPECT_GE(box_iou(faces[0].box, truth({60, 50})), 0.5) << faces[0].box;
    }
  }
  VideoOptions bad;
  bad.scan.scale_factor = 1.0;
  EXPECT_NE(invalid_argument_of([&] { bad.validate(); }).find("VideoOptions::scan: FaceDetector: scale_factor"),
            std::string::npos);
  VideoOptions other;
  other.scan.cascade_path = "/usr/share/opencv4/lbpcascades/lbpcascade_frontalface.xml";
  EXPECT_NE(invalid_argument_of([&] { VideoSession s(*analyzer_, other); }).find("lbpcascade_frontalface.xml"),
            std::string::npos);
}

TEST_F(Video, RejectsBadFramesAndTimes) {
  VideoSession session(*analyzer_);
  EXPECT_NE(invalid_argument_of([&] { session.process(cv::Mat(), 0); }).find("VideoSession::process"),
            std::string::npos);
  EXPECT_NE(invalid_argument_of([&] {
              session.process(cv::Mat(40, 40, CV_32FC1, 0.0f), 0);
            }).find("VideoSession::process"),
            std::string::npos);
  session.process(background(), 1.0);
  EXPECT_NE(invalid_argument_of([&] { session.process(background(), 0.5); }).find("time 0.5 s"),
            std::string::npos);
  EXPECT_NE(invalid_argument_of([&] { session.process(background(), std::nan("")); }).find("not finite"),
            std::string::npos);
  session.process(background(), 1.0);  // the same time again is fine
  EXPECT_EQ(session.frames(), 2);
  VideoOptions bad;
  bad.detect_every = 0;
  EXPECT_NE(invalid_argument_of([&] { VideoSession s(*analyzer_, bad); }).find("detect_every"),
            std::string::npos);
}

}  // namespace
}  // namespace fervid
