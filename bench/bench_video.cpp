// Frames per second of the video pipeline (VideoSession: detect + follow + classify + smooth) on
// a real clip and on a synthetic 640 x 480 stream: with a whole-frame detection on every frame
// (the default; VideoOptions::scan = FaceDetectorOptions::video()), the same with the photo scan
// settings (the Analyzer's FaceDetectorOptions, what video used before), every 5th frame, and on
// every frame with a full scan every 10th (local windows in between). BM_*ScanPhotoVsVideo runs
// both whole-frame scans on the same frames, alternately, in one run: their ms per frame and
// ratio hold even on a busy machine. Decoding is measured on its own (BM_VideoDecode) and kept out
// of the pipeline numbers: the clip is decoded into memory first. Counters per frame: detect_ms,
// follow_ms, classify_ms, faces. A program, not a test.
//
//   FERVID_BENCH_MODEL=experiments/x/best.fervid FERVID_BENCH_THREADS=1 fervid_bench_video
//   fervid_bench_video --benchmark_filter=Clip --benchmark_repetitions=3 --benchmark_format=json
//
// FERVID_BENCH_VIDEO: the clip (default $FERVID_DATA/faces/videos/face_recognition_short_hamilton_clip.mp4);
// FERVID_BENCH_MODEL: the model (default: the shipped one); FERVID_BENCH_THREADS: libtorch's
// intra-op threads (unset or 0: every core).
#include <benchmark/benchmark.h>

#include "bench_env.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/videoio.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "fervid/analyzer.h"
#include "fervid/runtime.h"
#include "fervid/video.h"

namespace {

using fervid::bench::env;

struct Clip {
  std::vector<cv::Mat> frames;
  double fps = 30;
  double decode_ms_per_frame = 0;
};

Clip decode(const std::string& path) {
  Clip clip;
  cv::VideoCapture cap(path);
  if (!cap.isOpened()) return clip;
  const double fps = cap.get(cv::CAP_PROP_FPS);
  if (fps > 0 && fps <= 1000) clip.fps = fps;
  cv::Mat frame;
  const auto t0 = std::chrono::steady_clock::now();
  while (cap.read(frame)) clip.frames.push_back(frame.clone());
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!clip.frames.empty()) clip.decode_ms_per_frame = 1000 * s / static_cast<double>(clip.frames.size());
  return clip;
}

// 150 frames of 640 x 480: the demo portrait's face (about 92 px) moving 2 px right and 1 px
// down per frame over a textured background.
Clip synthetic_stream() {
  Clip clip;
  const cv::Mat portrait = cv::imread(std::string(FERVID_EXAMPLES_DIR) + "/astronaut.png", cv::IMREAD_COLOR);
  if (portrait.empty()) return clip;
  const cv::Mat crop = portrait(cv::Rect(128, 20, 180, 180));
  cv::Mat bg(480, 640, CV_8UC3);
  for (int y = 0; y < bg.rows; ++y)
    for (int x = 0; x < bg.cols; ++x)
      bg.at<cv::Vec3b>(y, x) =
          cv::Vec3b::all(static_cast<uchar>(60 + ((x * 7 + y * 13) % 23) * 2 + x / 10 + y / 12));
  for (int t = 0; t < 150; ++t) {
    cv::Mat frame = bg.clone();
    crop.copyTo(frame(cv::Rect(40 + 2 * t, 60 + t, 180, 180)));
    clip.frames.push_back(frame);
  }
  return clip;
}

const fervid::Analyzer* g_analyzer = nullptr;

// One iteration: the whole clip through a fresh session (as a stream starts).
void BM_Pipeline(benchmark::State& state, const fervid::Analyzer* analyzer, const Clip* clip,
                 fervid::VideoOptions options) {
  if (clip->frames.empty()) {
    state.SkipWithError("no frames (see the message above)");
    return;
  }
  options.keep_entries = false;
  {  // warm-up: oneDNN primitives, cascade buffers
    fervid::VideoSession warm(*analyzer, options);
    for (size_t i = 0; i < std::min<size_t>(5, clip->frames.size()); ++i) warm.process(clip->frames[i], 0.0);
  }
  fervid::VideoStats sum;
  for (auto _ : state) {
    fervid::VideoSession session(*analyzer, options);
    for (size_t i = 0; i < clip->frames.size(); ++i)
      benchmark::DoNotOptimize(session.process(clip->frames[i], static_cast<double>(i) / clip->fps).size());
    const auto& s = session.stats();
    sum.frames += s.frames;
    sum.faces += s.faces;
    sum.detect_s += s.detect_s;
    sum.follow_s += s.follow_s;
    sum.classify_s += s.classify_s;
  }
  const double n = static_cast<double>(std::max<int64_t>(1, sum.frames));
  state.SetItemsProcessed(sum.frames);  // items_per_second = frames per second
  state.counters["detect_ms"] = 1000 * sum.detect_s / n;
  state.counters["follow_ms"] = 1000 * sum.follow_s / n;
  state.counters["classify_ms"] = 1000 * sum.classify_s / n;
  state.counters["faces"] = static_cast<double>(sum.faces) / n;
  state.counters["decode_ms"] = clip->decode_ms_per_frame;  // measured once, at load, not included above
}

// Whole-frame scans only: the photo settings and the video settings on each frame in turn, so both
// see the same frames under the same load. Counters: photo_ms, video_ms (per frame), ratio
// (photo / video), photo_faces and video_faces (boxes per frame), matched (the share of the photo
// scan's boxes that the video scan also finds, IoU >= 0.3).
void BM_ScanPhotoVsVideo(benchmark::State& state, const Clip* clip) {
  if (clip->frames.empty()) {
    state.SkipWithError("no frames (see the message above)");
    return;
  }
  const auto& detector = g_analyzer->pipeline().detector();
  const fervid::FaceDetectorOptions photo = detector.options(), video = fervid::FaceDetectorOptions::video();
  using clock = std::chrono::steady_clock;
  detector.detect(clip->frames[0], photo);  // warm-up
  detector.detect(clip->frames[0], video);
  double photo_s = 0, video_s = 0;
  int64_t frames = 0, photo_faces = 0, video_faces = 0, matched = 0;
  for (auto _ : state) {
    for (const auto& frame : clip->frames) {
      const auto t0 = clock::now();
      const auto a = detector.detect(frame, photo);
      const auto t1 = clock::now();
      const auto b = detector.detect(frame, video);
      const auto t2 = clock::now();
      photo_s += std::chrono::duration<double>(t1 - t0).count();
      video_s += std::chrono::duration<double>(t2 - t1).count();
      ++frames;
      photo_faces += static_cast<int64_t>(a.size());
      video_faces += static_cast<int64_t>(b.size());
      for (const auto& r : a) {
        double best = 0;
        for (const auto& q : b) best = std::max(best, fervid::box_iou(r, q));
        matched += best >= 0.3;
      }
    }
  }
  const double n = static_cast<double>(std::max<int64_t>(1, frames));
  state.SetItemsProcessed(frames);
  state.counters["photo_ms"] = 1000 * photo_s / n;
  state.counters["video_ms"] = 1000 * video_s / n;
  state.counters["ratio"] = video_s > 0 ? photo_s / video_s : 0;
  state.counters["photo_faces"] = static_cast<double>(photo_faces) / n;
  state.counters["video_faces"] = static_cast<double>(video_faces) / n;
  state.counters["matched"] = photo_faces > 0 ? static_cast<double>(matched) / static_cast<double>(photo_faces) : 0;
}

// Decoding alone: open the file and read every frame.
void BM_VideoDecode(benchmark::State& state, const std::string& path) {
  int64_t frames = 0;
  for (auto _ : state) {
    cv::VideoCapture cap(path);
    if (!cap.isOpened()) {
      state.SkipWithError(("cannot open " + path).c_str());
      return;
    }
    cv::Mat frame;
    while (cap.read(frame)) ++frames;
  }
  state.SetItemsProcessed(frames);
}

}  // namespace

int main(int argc, char** argv) {
  const int n = fervid::bench::threads_from_env("fervid_bench_video");
  if (n < 0) return 2;
  fervid::configure_runtime(n);
  std::string video = env("FERVID_BENCH_VIDEO");
  if (video.empty() && !env("FERVID_DATA").empty())
    video = env("FERVID_DATA") + "/faces/videos/face_recognition_short_hamilton_clip.mp4";
  std::unique_ptr<fervid::Analyzer> analyzer, haar;
  std::string model;
  try {
    model = env("FERVID_BENCH_MODEL").empty() ? fervid::default_model_path() : env("FERVID_BENCH_MODEL");
    const fervid::AnalyzerOptions options;
    analyzer = std::make_unique<fervid::Analyzer>(model, options);
    // The same model served as before BlazeFace, as a version-1 file is (the Haar cascade,
    // margin 0.1): the *Haar runs.
    fervid::AnalyzerOptions haar_options;
    haar_options.recipe = fervid::FaceRecipeOverrides::all_of(fervid::FaceRecipe::version1());
    haar = std::make_unique<fervid::Analyzer>(model, haar_options);
  } catch (const std::exception& e) {
    std::cerr << "fervid_bench_video: " << e.what() << " (set FERVID_BENCH_MODEL to a model file)\n";
    return 1;
  }
  g_analyzer = analyzer.get();
  static const Clip clip = video.empty() ? Clip{} : decode(video);
  static const Clip synthetic = synthetic_stream();
  if (video.empty()) {
    std::cerr << "fervid_bench_video: no clip: set FERVID_BENCH_VIDEO or FERVID_DATA; the clip benchmarks "
                 "are skipped\n";
  } else if (clip.frames.empty()) {
    std::cerr << "fervid_bench_video: " << video
              << ": cannot be read as a video; the clip benchmarks are skipped\n";
  }

  benchmark::Initialize(&argc, argv);
  benchmark::AddCustomContext("fervid_commit", FERVID_GIT_COMMIT);
  benchmark::AddCustomContext("threads", std::to_string(fervid::runtime_threads()));
  benchmark::AddCustomContext("model", model);
  benchmark::AddCustomContext("video", video);
  if (!clip.frames.empty()) {
    benchmark::AddCustomContext("video_frames", std::to_string(clip.frames.size()));
    benchmark::AddCustomContext(
        "video_size", std::to_string(clip.frames[0].cols) + "x" + std::to_string(clip.frames[0].rows));
  }
  // The default: a whole-frame detection on every frame with the video scan settings.
  fervid::VideoOptions every1, photo1, every5, local;
  photo1.scan = analyzer->pipeline().detector().options();  // the photo settings: what video used before
  every5.detect_every = 5;
  local.full_scan_every = 10;
  const fervid::Analyzer* model_faces = analyzer.get();
  const struct {
    const char* name;
    const fervid::Analyzer* analyzer;
    const Clip* clip;
    fervid::VideoOptions options;
  } runs[] = {{"BM_ClipDetectEvery1", model_faces, &clip, every1},
              {"BM_ClipDetectEvery1Haar", haar.get(), &clip, every1},
              {"BM_ClipDetectEvery1PhotoScan", model_faces, &clip, photo1},
              {"BM_ClipDetectEvery5", model_faces, &clip, every5},
              {"BM_ClipDetectEvery1FullScanEvery10", model_faces, &clip, local},
              {"BM_Synthetic640x480DetectEvery1", model_faces, &synthetic, every1},
              {"BM_Synthetic640x480DetectEvery1Haar", haar.get(), &synthetic, every1},
              {"BM_Synthetic640x480DetectEvery1PhotoScan", model_faces, &synthetic, photo1},
              {"BM_Synthetic640x480DetectEvery5", model_faces, &synthetic, every5},
              {"BM_Synthetic640x480DetectEvery1FullScanEvery10", model_faces, &synthetic, local}};
  for (const auto& r : runs)
    benchmark::RegisterBenchmark(r.name, BM_Pipeline, r.analyzer, r.clip, r.options)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  benchmark::RegisterBenchmark("BM_ClipScanPhotoVsVideo", BM_ScanPhotoVsVideo, &clip)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime()
      ->Iterations(1);
  benchmark::RegisterBenchmark("BM_Synthetic640x480ScanPhotoVsVideo", BM_ScanPhotoVsVideo, &synthetic)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime()
      ->Iterations(1);
  if (!video.empty())
    benchmark::RegisterBenchmark("BM_VideoDecode", BM_VideoDecode, video)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
