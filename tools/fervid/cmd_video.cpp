// fervid video: faces tracked through a video file or a camera, each with its expression
// smoothed over time; annotated video, JSONL timeline, per-track summary, speed and memory.
#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>

#include <opencv2/core/utils/logger.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>

#include "analyzer_flags.h"
#include "commands.h"
#include "fervid/json_text.h"
#include "fervid/video.h"
#include "progress.h"

namespace fervid::cli {

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

volatile std::sig_atomic_t g_interrupted = 0;
extern "C" void on_interrupt(int) { g_interrupted = 1; }

// Ctrl-C, and SIGTERM (kill, a service manager, a container stopping), end the stream cleanly
// while installed: files finished and renamed into place, summary printed.
class InterruptGuard {
 public:
  InterruptGuard() {
    g_interrupted = 0;
    previous_int_ = std::signal(SIGINT, on_interrupt);
    previous_term_ = std::signal(SIGTERM, on_interrupt);
  }
  ~InterruptGuard() {
    std::signal(SIGINT, previous_int_);
    std::signal(SIGTERM, previous_term_);
  }
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;

 private:
  void (*previous_int_)(int);
  void (*previous_term_)(int);
};

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Resident memory now (/proc/self/statm, second field, in pages), in MiB; -1 when unreadable.
double resident_mb() {
  std::ifstream in("/proc/self/statm");
  long size = 0, resident = 0;
  if (!(in >> size >> resident)) return -1;
  return static_cast<double>(resident) * static_cast<double>(::sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
}

// Peak resident memory of the process (getrusage; ru_maxrss is in KiB on Linux), in MiB.
double peak_resident_mb() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

bool is_camera_index(const std::string& s) {
  return !s.empty() && s.size() <= 4 &&
         std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

std::string lower_extension(const std::string& path) {
  std::string e = fs::u8path(path).extension().u8string();
  std::transform(e.begin(), e.end(), e.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return e;
}

// The writer's codec, by the output's extension (OpenCV picks the container by it too).
int fourcc_for(const std::string& out) {
  const auto e = lower_extension(out);
  if (e == ".avi") return cv::VideoWriter::fourcc('M', 'J', 'P', 'G');
  if (e == ".mp4" || e == ".m4v" || e == ".mov") return cv::VideoWriter::fourcc('m', 'p', '4', 'v');
  throw std::runtime_error("--out " + out + ": unsupported extension '" + e + "' (use .mp4 or .avi)");
}

// A file written under a temporary name beside its destination (same extension: the video
// writer chooses the container by it), renamed over the destination by commit(), removed if
// never committed.
class PendingFile {
 public:
  explicit PendingFile(const std::string& path) : path_(path) {
    const fs::path p = fs::u8path(path);
    temp_ = (p.parent_path() / fs::u8path("." + p.stem().u8string() + ".tmp-" + std::to_string(::getpid()) +
                                          p.extension().u8string()))
                .u8string();
  }
  ~PendingFile() {
    if (!committed_) {
      std::error_code ec;
      fs::remove(fs::u8path(temp_), ec);
    }
  }
  PendingFile(const PendingFile&) = delete;
  PendingFile& operator=(const PendingFile&) = delete;
  const std::string& temp() const { return temp_; }
  const std::string& path() const { return path_; }
  void commit() {
    std::error_code ec;
    fs::rename(fs::u8path(temp_), fs::u8path(path_), ec);
    if (ec) throw std::runtime_error(path_ + ": cannot move the finished file into place: " + ec.message());
    committed_ = true;
  }

 private:
  std::string path_, temp_;
  bool committed_ = false;
};

// The input: a file (checked first, so that a typo is named as such) or a camera by index.
cv::VideoCapture open_source(const std::string& source, bool camera) {
  cv::VideoCapture cap;
  if (camera) {
    try {
      cap.open(std::stoi(source));
    } catch (const cv::Exception& e) {
      throw std::runtime_error("camera " + source + ": cannot be opened: " + e.what());
    }
    if (!cap.isOpened())
      throw std::runtime_error("camera " + source + ": cannot be opened (no such camera, or it is busy)");
    return cap;
  }
  std::error_code ec;
  const auto p = fs::u8path(source);
  if (!fs::exists(p, ec)) throw DataError(source + ": no such file");
  if (fs::is_directory(p, ec)) throw DataError(source + ": is a folder, not a video file");
  // FFmpeg first, then OpenCV's own MJPEG reader; not CAP_ANY, whose GStreamer backend prints
  // "GStreamer-CRITICAL" lines on stderr for an empty or corrupt file before our error.
  for (const int api : {cv::CAP_FFMPEG, cv::CAP_OPENCV_MJPEG}) {
    try {
      if (cap.open(source, api) && cap.isOpened()) return cap;
    } catch (const cv::Exception& e) {
      throw DataError(source + ": cannot be opened as a video: " + e.what());
    }
  }
  throw DataError(source + ": cannot be opened as a video (not a video, or an unsupported format)");
}

std::string top_shares(const TrackSummary& s, const std::vector<std::string>& names, size_t n) {
  std::vector<size_t> order(s.share.size());
  for (size_t k = 0; k < order.size(); ++k) order[k] = k;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return s.share[a] > s.share[b]; });
  std::string out;
  for (size_t k = 0; k < std::min(n, order.size()) && s.share[order[k]] > 0; ++k)
    out += fmt::format("{}{} {:.0f}%", k ? ", " : "", names.at(order[k]), 100 * s.share[order[k]]);
  return out;
}

}  // namespace

void add_video_command(CLI::App& app, const GlobalOptions& /*global*/) {
  struct Flags {
    std::string source;
    std::string out, jsonl;
    bool json = false;
    int64_t max_frames = 0;
    double loop_minutes = 0;
    double memory_every_s = 60;
    std::string scan = "video";
    VideoOptions video;
    AnalyzerFlags analyzer;
  };
  auto f = std::make_shared<Flags>();
  auto* cmd = app.add_subcommand("video",
                                 "Faces tracked through a video file or a camera, with smoothed expressions");
  cmd->add_option("source", f->source, "Video file, or a camera index (0, 1, ...)")->required();
  cmd->add_option("--out", f->out, "Write the annotated video here (.mp4: mp4v, .avi: MJPG)");
  cmd->add_option("--jsonl", f->jsonl, "Write the timeline here: one JSON line per face per frame");
  cmd->add_flag("--json", f->json, "Print the summary as one JSON document");
  cmd->add_option("--every", f->video.detect_every,
                  "Run the face detector every N frames; follow faces in between")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--full-scan-every", f->video.full_scan_every,
                  "Scan the whole frame on every Mth detection only; the others look around the known faces "
                  "(faster; new faces are then found on full scans only)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--min-hits", f->video.min_hits, "Detections in a row before a new face is shown")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--smooth", f->video.smoothing,
                  "EMA weight of the past for the probabilities (0 = none; < 1)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));  // 1 itself: VideoOptions::validate says why not
  cmd->add_option("--match-iou", f->video.match_iou, "Overlap a detection needs to continue a track")
      ->capture_default_str()
      ->check(CLI::Range(0.01, 1.0));
  cmd->add_option("--max-missed", f->video.max_missed, "Detection runs without its face before a track ends")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--cut-threshold", f->video.cut_threshold,
                  "Histogram change that counts as a scene cut and ends every track (0 = off)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--max-frames", f->max_frames, "Stop after this many frames (0 = the whole video)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--loop-minutes", f->loop_minutes,
                  "Replay the file from the start until this many minutes have passed (memory-growth check)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--memory-every", f->memory_every_s,
                  "Sample resident memory every this many seconds (the summary's rss_mb samples)")
      ->capture_default_str()
      ->check(CLI::Range(0.01, 86400.0));
  cmd->add_option("--scan", f->scan,
                  "Whole-frame detection settings: video (fast enough for every frame) or photo (those of "
                  "`fervid predict`: ~4x the time, finds a few more faces near the minimum size); the "
                  "detection flags below adjust them")
      ->capture_default_str()
      ->check(CLI::IsMember({"video", "photo"}));
  // The recipe flags: the Analyzer's recipe, and (its detection flags) how whole frames are scanned.
  f->analyzer.add_to(cmd);
  cmd->callback([f] {
    // Our messages name the input; OpenCV's and FFmpeg's own lines ("moov atom not found") would
    // only repeat them less clearly. A user's OPENCV_FFMPEG_LOGLEVEL is kept.
    cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_ERROR);
    ::setenv("OPENCV_FFMPEG_LOGLEVEL", "-8", /*overwrite=*/0);
    const bool camera = is_camera_index(f->source);
    if (camera && f->loop_minutes > 0)
      throw std::runtime_error("--loop-minutes replays a file; " + f->source + " is a camera");
    const int fourcc = f->out.empty() ? 0 : fourcc_for(f->out);
    cv::VideoCapture cap = open_source(f->source, camera);
    const auto analyzer = f->analyzer.make();
    {  // the preset (video, or the Analyzer's photo settings), with the detection flags given on top
      FacePipelineOptions scan;
      scan.detector = f->video.scan;
      if (f->scan == "photo") {
        scan.detector = analyzer.pipeline().detector().options();
        scan.detector.cascade_path.clear();
        scan.detector.blazeface_path.clear();
      }
      apply_face_recipe(f->analyzer.recipe.given().apply(face_recipe_of(scan)), scan);
      f->video.scan = scan.detector;
    }
    f->video.validate();
    const auto& names = analyzer.class_names();
    VideoOptions vo = f->video;
    vo.keep_entries = false;  // the timeline is streamed to --jsonl; memory stays flat
    VideoSession session(analyzer, vo);

    const double reported_fps = cap.get(cv::CAP_PROP_FPS);
    const bool fps_known = reported_fps > 0 && reported_fps <= 1000;
    const double fps = fps_known ? reported_fps : 30.0;
    const auto reported_count = static_cast<int64_t>(cap.get(cv::CAP_PROP_FRAME_COUNT));
    const int64_t frame_count = camera ? 0 : std::max<int64_t>(0, reported_count);
    const double loop_s = 60.0 * f->loop_minutes;

    std::unique_ptr<PendingFile> out_file, jsonl_file;
    cv::VideoWriter writer;
    std::ofstream jsonl;
    if (!f->jsonl.empty()) {
      jsonl_file = std::make_unique<PendingFile>(f->jsonl);
      jsonl.open(fs::u8path(jsonl_file->temp()), std::ios::binary);
      if (!jsonl) throw std::runtime_error(f->jsonl + ": cannot create the timeline file");
    }
    if (!f->out.empty()) out_file = std::make_unique<PendingFile>(f->out);

    InterruptGuard interrupt;
    ProgressLine progress;
    const auto t0 = Clock::now();
    auto last_shown = t0;
    double decode_s = 0, output_s = 0;
    int64_t frames = 0, pass_frames = 0, jsonl_lines = 0;
    int passes = 1;
    double time_offset = 0;  // video time of the current pass's start (loops)
    double next_sample = f->memory_every_s;
    std::vector<double> rss_samples, sample_s;  // resident MB, and when (s since the start)
    cv::Size size;
    cv::Mat frame;
    for (;;) {
      if (g_interrupted || (f->max_frames > 0 && frames >= f->max_frames)) break;
      auto td = Clock::now();
      bool ok = false;
      try {
        ok = cap.read(frame) && !frame.empty();
      } catch (const cv::Exception& e) {
        throw DataError(f->source + ": cannot decode frame " + std::to_string(frames) + ": " + e.what());
      }
      decode_s += seconds_since(td);
      if (!ok) {
        if (frames == 0) {
          throw DataError(camera ? "camera " + f->source + ": delivered no frame"
                                 : f->source + ": holds no frame (an empty or unreadable video)");
        }
        if (loop_s > 0 && pass_frames > 0 && seconds_since(t0) < loop_s) {
          time_offset += pass_frames / fps;
          pass_frames = 0;
          ++passes;
          td = Clock::now();
          cap.release();
          cap = open_source(f->source, false);
          decode_s += seconds_since(td);
          continue;
        }
        break;
      }
      if (frames == 0) {
        size = frame.size();
        if (out_file) {
          writer.open(out_file->temp(), fourcc, fps, size);
          if (!writer.isOpened())
            throw std::runtime_error(f->out + ": cannot write a video there (codec or folder)");
        }
      }
      const double t = camera ? seconds_since(t0) : time_offset + static_cast<double>(pass_frames) / fps;
      const auto faces = session.process(frame, t);
      const auto to = Clock::now();
      if (jsonl.is_open()) {
        for (const auto& face : faces) jsonl << frame_record(face, frames, t, names).dump() << '\n';
        jsonl_lines += static_cast<int64_t>(faces.size());
      }
      if (writer.isOpened()) {
        draw_tracked_faces(frame, faces);
        if (frame.size() != size) cv::resize(frame, frame, size);
        writer.write(frame);
      }
      output_s += seconds_since(to);
      ++frames;
      ++pass_frames;

      const double elapsed = seconds_since(t0);
      if (elapsed >= next_sample) {
        rss_samples.push_back(resident_mb());
        sample_s.push_back(elapsed);
        // The next multiple of the interval (a frame slower than the interval skips some).
        next_sample = f->memory_every_s * (std::floor(elapsed / f->memory_every_s) + 1);
      }
      if (loop_s > 0 && elapsed >= loop_s) break;
      if (seconds_since(last_shown) >= 0.25) {
        last_shown = Clock::now();
        const double rate = frames / elapsed;
        std::string text;
        if (loop_s > 0) {
          text = fmt::format("minute {:.1f}/{:g}, pass {}, {} frames, {:.1f} fps, {:.0f} MB resident",
                             elapsed / 60, f->loop_minutes, passes, frames, rate, resident_mb());
        } else if (frame_count > 0) {
          const int64_t todo = f->max_frames > 0 ? std::min(f->max_frames, frame_count) : frame_count;
          text = fmt::format("frame {}/{}, {:.1f} fps, {} left, {} face{}", frames, todo, rate,
                             format_duration(std::max<int64_t>(0, todo - frames) / rate), faces.size(),
                             faces.size() == 1 ? "" : "s");
        } else {
          text = fmt::format("frame {}, {:.1f} fps, {} face{}", frames, rate, faces.size(),
                             faces.size() == 1 ? "" : "s");
        }
        progress.show(text);
      }
    }
    const double seconds = seconds_since(t0);
    progress.finish();
    if (writer.isOpened()) writer.release();
    if (jsonl.is_open()) {
      jsonl.flush();
      if (!jsonl) throw std::runtime_error(f->jsonl + ": write failed (disk full?)");
      jsonl.close();
    }
    if (out_file) out_file->commit();
    if (jsonl_file) jsonl_file->commit();

    const auto& st = session.stats();
    const double per_frame = frames > 0 ? 1000.0 / static_cast<double>(frames) : 0.0;
    const double fps_all = frames / seconds;
    const double fps_no_decode = frames / std::max(1e-9, seconds - decode_s);
    const double peak_mb = peak_resident_mb();
    const auto summaries = session.summaries();

    if (f->json) {
      nlohmann::json j = {{"source", f->source},
                          {"camera", camera},
                          {"model", f->analyzer.model_path()},
                          {"width", size.width},
                          {"height", size.height},
                          {"source_fps", fps_known ? nlohmann::json(reported_fps) : nlohmann::json()},
                          {"frame_count", camera ? nlohmann::json() : nlohmann::json(reported_count)},
                          {"frames", frames},
                          {"passes", passes},
                          {"interrupted", g_interrupted != 0},
                          {"detect_every", vo.detect_every},
                          {"smoothing", vo.smoothing},
                          {"full_scan_every", vo.full_scan_every},
                          {"scan",
                           {{"preset", f->scan},
                            {"min_face", vo.scan.min_face_size},
                            {"scale_step", vo.scan.scale_factor},
                            {"neighbors", vo.scan.min_neighbors},
                            {"scale_to_min_face", vo.scan.scale_to_min_face},
                            {"detect_side", vo.scan.max_detect_side}}},
                          {"detection_frames", st.detection_frames},
                          {"full_scans", st.full_scans},
                          {"scene_cuts", st.cuts},
                          {"faces", st.faces},
                          {"seconds", seconds},
                          {"fps", fps_all},
                          {"fps_without_decode", fps_no_decode},
                          {"ms_per_frame",
                           {{"decode", decode_s * per_frame},
                            {"detect", st.detect_s * per_frame},
                            {"follow", st.follow_s * per_frame},
                            {"cut_test", st.cut_s * per_frame},
                            {"classify", st.classify_s * per_frame},
                            {"session", st.total_s * per_frame},
                            {"output", output_s * per_frame}}},
                          {"peak_rss_mb", peak_mb},
                          {"tracks", nlohmann::json::array()}};
      for (const auto& s : summaries) j["tracks"].push_back(to_json(s, names));
      if (out_file) j["out"] = f->out;
      if (jsonl_file) {
        j["jsonl"] = f->jsonl;
        j["jsonl_lines"] = jsonl_lines;
      }
      j["memory_every_s"] = f->memory_every_s;
      j["rss_mb_samples"] = rss_samples;
      j["rss_sample_s"] = sample_s;
      std::cout << dump_json(j, 2) << "\n";
      return;
    }

    std::cout << fmt::format("{}: {} frames, {}x{}, {} fps{}; detection every {} frame{}, smoothing {:g}\n",
                             camera ? "camera " + f->source : f->source, frames, size.width, size.height,
                             fps_known ? fmt::format("{:.2f}", reported_fps) : "?",
                             passes > 1 ? fmt::format(", {} passes", passes) : "", vo.detect_every,
                             vo.detect_every == 1 ? "" : "s", vo.smoothing);
    // Tracks of one or two frames are mostly false detections: counted, not listed.
    constexpr int64_t kMinListed = 3;
    std::cout << fmt::format("{:>5}  {:>8}  {:>8}  {:>6}  {:>8}  {:<14}  {}\n", "track", "first", "last",
                             "frames", "detected", "dominant", "share of frames");
    int64_t brief = 0;
    for (const auto& s : summaries) {
      if (s.frames < kMinListed) {
        ++brief;
        continue;
      }
      std::cout << fmt::format("{:>5}  {:>7.2f}s  {:>7.2f}s  {:>6}  {:>8}  {:<14}  {}\n", s.id, s.first_s,
                               s.last_s, s.frames, s.detected_frames,
                               s.dominant < 0
                                   ? std::string("-")
                                   : fmt::format("{} {:.0f}%", names.at(static_cast<size_t>(s.dominant)),
                                                 100 * s.share.at(static_cast<size_t>(s.dominant))),
                               top_shares(s, names, 3));
    }
    if (summaries.empty()) std::cout << "  (no face found)\n";
    if (brief > 0)
      std::cout << fmt::format("  + {} brief track{} (< {} frames) not listed; --json lists all\n", brief,
                               brief == 1 ? "" : "s", kMinListed);
    std::cout << fmt::format(
        "speed: {:.1f} fps overall, {:.1f} fps without decode ({:.1f} s for {} frames)\n", fps_all,
        fps_no_decode, seconds, frames);
    std::cout << fmt::format(
        "per frame: decode {:.1f} ms, detect {:.1f} ms ({} runs, {} full scans), follow {:.2f} ms, "
        "classify {:.1f} ms ({:.2f} faces), output {:.1f} ms; {} scene cut{}\n",
        decode_s * per_frame, st.detect_s * per_frame, st.detection_frames, st.full_scans,
        st.follow_s * per_frame, st.classify_s * per_frame,
        frames > 0 ? static_cast<double>(st.faces) / frames : 0.0, output_s * per_frame, st.cuts,
        st.cuts == 1 ? "" : "s");
    std::cout << fmt::format("peak resident memory: {:.0f} MB\n", peak_mb);
    if (!rss_samples.empty()) {
      std::string rs;
      for (size_t i = 0; i < rss_samples.size(); ++i) rs += fmt::format("{}{:.0f}", i ? ", " : "", rss_samples[i]);
      std::cout << fmt::format("resident memory every {:g} s (MB): {}\n", f->memory_every_s, rs);
    }
    if (out_file) std::cout << "annotated video: " << f->out << "\n";
    if (jsonl_file) std::cout << fmt::format("timeline: {} ({} lines)\n", f->jsonl, jsonl_lines);
  });
}

}  // namespace fervid::cli
