// Face detectors side by side on the hand-annotated photos and galleries
// (tests/fixtures/face_annotations.json, photos from $FERVID_DATA/faces): recall and precision at
// IoU >= 0.5 over all faces and per tag, ms per image, BlazeFace's recall/precision against its
// score threshold (the curve its default was chosen on), and the pipeline's cost per frame split
// into decode, detect, align + crop, classify, at 640 x 480 and 1920 x 1080.
//
//   FERVID_DATA=../shared/data build/bench/fervid_bench_detector [--out DIR] [--repeats N]
//
// Writes DIR/detector.json and DIR/detector-threshold.png (default DIR: experiments/detector).
// Threads: FERVID_BENCH_THREADS (default: every core).
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "bench_env.h"
#include "bench_timing.h"
#include "fervid/analyzer.h"
#include "fervid/atomic_file.h"
#include "fervid/detection_eval.h"
#include "fervid/image_io.h"
#include "fervid/plot.h"
#include "fervid/runtime.h"

namespace fs = std::filesystem;
using fervid::bench::nearest_rank;

namespace {

using clock_type = std::chrono::steady_clock;
double ms_since(clock_type::time_point t0) {
  return std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
}

struct Detector {
  std::string name;
  fervid::FaceDetectorOptions options;
};

struct Frame {
  fervid::AnnotatedImage truth;
  cv::Mat image;
};

// Median of `repeats` timed calls (after one untimed warm-up) and the last result.
template <typename F>
double median_ms(int repeats, F&& call) {
  call();
  std::vector<double> ms;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = clock_type::now();
    call();
    ms.push_back(ms_since(t0));
  }
  return nearest_rank(ms, 0.5);
}

}  // namespace

int main(int argc, char** argv) {
  std::string out_dir = std::string(FERVID_SOURCE_DIR) + "/experiments/detector";
  int repeats = 5;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--out" && i + 1 < argc) out_dir = argv[++i];
    else if (a == "--repeats" && i + 1 < argc) repeats = std::max(1, std::atoi(argv[++i]));
    else {
      std::cerr << "usage: fervid_bench_detector [--out DIR] [--repeats N]  (needs FERVID_DATA)\n";
      return 2;
    }
  }
  const std::string data = fervid::bench::env("FERVID_DATA");
  if (data.empty()) {
    std::cerr << "fervid_bench_detector: set FERVID_DATA to the shared datasets (../shared/data)\n";
    return 2;
  }
  const int threads = fervid::bench::threads_from_env("fervid_bench_detector");
  if (threads < 0) return 2;
  fervid::configure_runtime(threads);
  const fs::path faces_root = fs::path(data) / "faces";
  const std::string annotations_path = std::string(FERVID_SOURCE_DIR) + "/tests/fixtures/face_annotations.json";
  const auto annotations = fervid::read_face_annotations(annotations_path);
  auto read = [&](const std::string& name) { return fervid::read_image((faces_root / name).string()); };

  std::vector<Frame> frames;
  for (const auto& img : annotations.images) frames.push_back({img, read(img.name)});
  std::vector<Frame> galleries;
  for (const auto& g : annotations.galleries) {
    Frame f;
    f.image = fervid::compose_gallery(g, annotations, read, &f.truth);
    galleries.push_back(std::move(f));
  }

  fervid::FaceDetectorOptions blaze;
  fervid::FaceDetectorOptions haar;
  haar.detector = fervid::DetectorKind::kHaar;
  fervid::FaceDetectorOptions haar_video = fervid::FaceDetectorOptions::video();
  haar_video.detector = fervid::DetectorKind::kHaar;
  haar_video.cascade_path = haar.cascade_path;
  fervid::FaceDetectorOptions blaze_video = fervid::FaceDetectorOptions::video();
  const std::vector<Detector> detectors = {
      {"blazeface", blaze}, {"blazeface (video scan)", blaze_video}, {"haar", haar}, {"haar (video scan)", haar_video}};

  nlohmann::json report = {{"commit", FERVID_GIT_COMMIT},
                           {"threads", fervid::runtime_threads()},
                           {"annotations", annotations_path},
                           {"min_iou", 0.5},
                           {"images", frames.size()},
                           {"galleries", galleries.size()}};
  std::printf("%-24s %8s %8s %8s %8s %10s %10s\n", "detector", "faces", "recall", "precis.", "gallery", "ms/image",
              "ms/gallery");
  for (const auto& d : detectors) {
    const fervid::FaceDetector detector(d.options);
    // Counts over a set of frames, each frame's own counts and its median time.
    auto run_set = [&](const std::vector<Frame>& set, fervid::DetectionCounts& total, std::vector<double>& ms) {
      nlohmann::json each = nlohmann::json::array();
      for (const auto& f : set) {
        std::vector<cv::Rect> boxes;
        ms.push_back(median_ms(repeats, [&] { boxes = detector.detect(f.image); }));
        total.add(f.truth, boxes);
        fervid::DetectionCounts one;
        one.add(f.truth, boxes);
        each.push_back({{"image", f.truth.name}, {"size", {f.image.cols, f.image.rows}}, {"counts", one.to_json()},
                        {"ms", ms.back()}});
      }
      return each;
    };
    fervid::DetectionCounts photos, gallery;
    std::vector<double> ms_photo, ms_gallery;
    const nlohmann::json per_image = run_set(frames, photos, ms_photo);
    const nlohmann::json per_gallery = run_set(galleries, gallery, ms_gallery);
    const double photo_ms = nearest_rank(ms_photo, 0.5), gallery_ms = nearest_rank(ms_gallery, 0.5);
    std::printf("%-24s %8lld %8.3f %8.3f %8.3f %10.2f %10.2f\n", d.name.c_str(), static_cast<long long>(photos.faces),
                photos.recall(), photos.precision(), gallery.recall(), photo_ms, gallery_ms);
    for (const auto& [tag, fn] : photos.by_tag)
      std::printf("    %-20s %lld of %lld found\n", tag.c_str(), static_cast<long long>(fn.first),
                  static_cast<long long>(fn.second));
    report["detectors"][d.name] = {{"photos", photos.to_json()},
                                   {"galleries", gallery.to_json()},
                                   {"median_ms_per_photo", photo_ms},
                                   {"median_ms_per_gallery", gallery_ms},
                                   {"per_image", per_image},
                                   {"per_gallery", per_gallery}};
  }

  // BlazeFace's score threshold: recall and precision over photos + galleries per min_score.
  std::vector<double> recall, precision;
  nlohmann::json curve = nlohmann::json::array();
  const fervid::FaceDetector detector(blaze);
  for (int t = 30; t <= 95; t += 1) {
    auto o = blaze;
    o.min_score = static_cast<float>(t / 100.0);
    fervid::DetectionCounts c;
    for (const auto* set : {&frames, &galleries})
      for (const auto& f : *set) c.add(f.truth, detector.detect(f.image, o));
    recall.push_back(c.recall());
    precision.push_back(c.precision());
    curve.push_back({{"min_score", o.min_score}, {"recall", c.recall()}, {"precision", c.precision()},
                     {"found", c.found}, {"faces", c.faces}, {"detections", c.detections}});
  }
  report["blazeface_threshold_curve"] = curve;
  fs::create_directories(out_dir);
  fervid::write_line_chart(out_dir + "/detector-threshold.png",
                           "BlazeFace: photos + galleries, IoU >= 0.5", "min_score x 100",
                           {{"recall", recall, 0}, {"precision", precision, 1}}, 30);

  // The pipeline per frame at two sizes: decode (JPEG), detect, align + crop, classify.
  fervid::AnalyzerOptions ao;
  const fervid::Analyzer analyzer(fervid::default_model_path(), ao);
  nlohmann::json split = nlohmann::json::object();
  std::printf("\nper-frame cost (median ms): %-12s %8s %8s %8s %8s %8s %6s\n", "frame", "decode", "detect", "crop",
              "classify", "total", "faces");
  // A 640 x 480 frame too: the 1280 x 720 gallery shrunk to it (a small video-call window).
  std::vector<std::pair<std::string, cv::Mat>> split_frames;
  for (const auto& g : galleries) {
    if (g.image.cols == 1280 && g.image.rows == 720) {
      cv::Mat small;
      cv::resize(g.image, small, cv::Size(640, 480), 0, 0, cv::INTER_AREA);
      split_frames.emplace_back(g.truth.name + " at 640x480", small);
    }
    split_frames.emplace_back(g.truth.name, g.image);
  }
  for (const auto& [name, image] : split_frames) {
    std::vector<uchar> jpeg;
    cv::imencode(".jpg", image, jpeg, {cv::IMWRITE_JPEG_QUALITY, 90});
    cv::Mat decoded;
    std::vector<fervid::DetectedFace> found;
    std::vector<fervid::PreparedFace> prepared;
    const double decode = median_ms(repeats, [&] { decoded = cv::imdecode(jpeg, cv::IMREAD_COLOR); });
    const double detect = median_ms(repeats, [&] { found = analyzer.detect_faces(decoded); });
    const double crop = median_ms(repeats, [&] {
      prepared.clear();
      cv::Mat gray;
      cv::cvtColor(decoded, gray, cv::COLOR_BGR2GRAY);
      for (const auto& f : found) prepared.push_back(analyzer.pipeline().prepare(gray, f));
    });
    std::vector<const uint8_t*> crops;
    for (const auto& p : prepared) crops.push_back(p.face.ptr<uint8_t>());
    const double classify = median_ms(repeats, [&] { (void)analyzer.classifier().classify(crops); });
    const std::string size = std::to_string(image.cols) + "x" + std::to_string(image.rows);
    std::printf("%27s %-12s %8.2f %8.2f %8.2f %8.2f %8.2f %6zu\n", "", size.c_str(), decode, detect, crop, classify,
                decode + detect + crop + classify, found.size());
    split[name] = {{"size", size}, {"decode_ms", decode}, {"detect_ms", detect}, {"crop_ms", crop},
                           {"classify_ms", classify}, {"total_ms", decode + detect + crop + classify},
                           {"faces", found.size()}};
  }
  report["pipeline_split"] = split;
  fervid::write_file_atomically(out_dir + "/detector.json", report.dump(2) + "\n");
  std::printf("\nwrote %s/detector.json and detector-threshold.png\n", out_dir.c_str());
  return 0;
}
