// `fervid video` end to end: a synthetic MJPG .avi (the demo portrait's face moving across a
// textured background) gives an annotated video, a JSONL timeline and a JSON summary that agree
// with each other; a missing file, a file that is not a video and an absent camera are errors
// that name what was asked for. A tiny random model (width 0.125) stands in for a trained one.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/videoio.hpp>

#include "fervid/model_io.h"

namespace fs = std::filesystem;

namespace {

struct Run {
  int status;
  std::string out, err;
};

// The fervid binary as a user runs it; stdout and stderr apart (progress goes to stderr).
Run run(const std::string& args, const fs::path& dir) {
  const fs::path err_file = dir / "stderr.txt";
  const std::string cmd =
      "OMP_WAIT_POLICY=PASSIVE " + std::string(FERVID_CLI_PATH) + " " + args + " 2>" + err_file.string();
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return {-1, "", ""};
  std::string out;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  const int st = pclose(p);
  std::ifstream in(err_file);
  std::string err{std::istreambuf_iterator<char>(in), {}};
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out, err};
}

constexpr int kFrames = 24;

class VideoCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(fs::temp_directory_path() / ("fervid_video_cli_" + std::to_string(::getpid())));
    fs::remove_all(*dir_);
    fs::create_directories(*dir_);
    torch::manual_seed(5);
    fervid::ModelConfig c;
    c.width = 0.125;
    fervid::MCSANet net(c);
    net->eval();
    fervid::save_model((*dir_ / "tiny.fervid").string(), net);
    // 320 x 240 at 15 fps: the portrait's face (about 92 px) moving 3 px right per frame.
    const cv::Mat portrait =
        cv::imread(std::string(FERVID_EXAMPLES_DIR) + "/astronaut.png", cv::IMREAD_COLOR);
    ASSERT_FALSE(portrait.empty());
    const cv::Mat crop = portrait(cv::Rect(128, 20, 180, 180));
    cv::VideoWriter w((*dir_ / "clip.avi").string(), cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), 15,
                      cv::Size(320, 240));
    ASSERT_TRUE(w.isOpened());
    for (int t = 0; t < kFrames; ++t) {
      cv::Mat frame(240, 320, CV_8UC3);
      for (int y = 0; y < frame.rows; ++y)
        for (int x = 0; x < frame.cols; ++x)
          frame.at<cv::Vec3b>(y, x) =
              cv::Vec3b::all(static_cast<uchar>(70 + ((x * 7 + y * 13) % 23) * 2 + x / 8));
      crop.copyTo(frame(cv::Rect(20 + 3 * t, 30, 180, 180)));
      w.write(frame);
    }
    w.release();
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
  }
  static std::string model() { return " --model " + (*dir_ / "tiny.fervid").string(); }
  static fs::path* dir_;
};
fs::path* VideoCli::dir_ = nullptr;

TEST_F(VideoCli, WritesTheAnnotatedVideoTheTimelineAndTheSummary) {
  const fs::path out = *dir_ / "annotated.avi", jsonl = *dir_ / "timeline.jsonl";
  const auto r =
      run("--threads 1 video " + (*dir_ / "clip.avi").string() + model() + " --every 3 --smooth 0.5 --out " +
              out.string() + " --jsonl " + jsonl.string() + " --json",
          *dir_);
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("frames"), kFrames);
  EXPECT_EQ(j.at("width"), 320);
  EXPECT_EQ(j.at("height"), 240);
  EXPECT_EQ(j.at("detect_every"), 3);
  EXPECT_EQ(j.at("detection_frames"), kFrames / 3);
  EXPECT_GT(j.at("fps").get<double>(), 0);
  EXPECT_GE(j.at("fps_without_decode").get<double>(), j.at("fps").get<double>());
  EXPECT_GT(j.at("peak_rss_mb").get<double>(), 10);
  for (const char* k : {"decode", "detect", "follow", "classify"})
    EXPECT_TRUE(j.at("ms_per_frame").contains(k)) << k;
  // One face, one track, from its confirmation (the second detection, frame 3) to the end.
  ASSERT_EQ(j.at("tracks").size(), 1u) << j.dump(2);
  const auto& track = j.at("tracks")[0];
  EXPECT_EQ(track.at("track"), 1);
  EXPECT_EQ(track.at("frames"), kFrames - 3);
  EXPECT_EQ(track.at("detected_frames"), kFrames / 3 - 1);
  EXPECT_NEAR(track.at("first_s").get<double>(), 3 / 15.0, 1e-9);
  EXPECT_NEAR(track.at("last_s").get<double>(), (kFrames - 1) / 15.0, 1e-9);

  // The timeline: one line per face per frame, agreeing with the summary.
  ASSERT_TRUE(fs::exists(jsonl));
  EXPECT_EQ(j.at("jsonl_lines"), kFrames - 3);
  std::ifstream in(jsonl);
  std::string line;
  int lines = 0, last_frame = -1, detected = 0;
  while (std::getline(in, line)) {
    const auto rec = nlohmann::json::parse(line);
    ++lines;
    EXPECT_EQ(rec.at("track"), 1);
    EXPECT_GT(rec.at("frame").get<int>(), last_frame);
    last_frame = rec.at("frame").get<int>();
    EXPECT_NEAR(rec.at("time").get<double>(), last_frame / 15.0, 1e-9);
    detected += rec.at("detected").get<bool>() ? 1 : 0;
    EXPECT_EQ(rec.at("probs").size(), 7u);
    EXPECT_EQ(rec.at("raw_probs").size(), 7u);
    // The box follows the face: 3 px per frame to the right.
    const int x = rec.at("box").at("x").get<int>();
    EXPECT_NEAR(x - 3 * last_frame, 20 + 50, 12) << line;
  }
  EXPECT_EQ(lines, kFrames - 3);
  EXPECT_EQ(detected, kFrames / 3 - 1);
  EXPECT_EQ(last_frame, kFrames - 1);

  // The annotated video: every frame, the input's size; no temporary files left behind.
  cv::VideoCapture cap(out.string());
  ASSERT_TRUE(cap.isOpened());
  int frames = 0;
  cv::Mat frame;
  while (cap.read(frame)) {
    EXPECT_EQ(frame.size(), cv::Size(320, 240));
    ++frames;
  }
  EXPECT_EQ(frames, kFrames);
  for (const auto& e : fs::directory_iterator(*dir_))
    EXPECT_EQ(e.path().filename().string().find(".tmp-"), std::string::npos) << e.path();
}

// A service manager, a container or `kill` stops a video run with SIGTERM: like Ctrl-C, the
// annotated video and the summary are finished (not a temporary file and no output).
TEST_F(VideoCli, SigtermFinishesTheOutputsLikeCtrlC) {
  const fs::path out = *dir_ / "terminated.avi", summary = *dir_ / "terminated.json";
  const std::string cmd = "exec " + std::string(FERVID_CLI_PATH) + " --threads 1 video " +
                          (*dir_ / "clip.avi").string() + model() + " --loop-minutes 5 --out " + out.string() +
                          " --json > " + summary.string() + " 2>/dev/null";
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // Signalled once it is writing: its temporary video holds frames.
  bool writing = false;
  for (int i = 0; i < 600 && !writing; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(*dir_, ec)) {
      const auto name = e.path().filename().string();
      if (name.find("terminated.tmp-") != std::string::npos && fs::file_size(e.path(), ec) > 20000) writing = true;
    }
  }
  ASSERT_TRUE(writing) << "fervid video never wrote frames";
  ASSERT_EQ(::kill(pid, SIGTERM), 0);
  int st = 0;
  ASSERT_EQ(::waitpid(pid, &st, 0), pid);
  ASSERT_TRUE(WIFEXITED(st)) << "killed by signal " << (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
  EXPECT_EQ(WEXITSTATUS(st), 0);
  std::ifstream in(summary);
  const auto j = nlohmann::json::parse(in);
  EXPECT_TRUE(j.at("interrupted").get<bool>());
  cv::VideoCapture cap(out.string());
  ASSERT_TRUE(cap.isOpened()) << out;
  int frames = 0;
  cv::Mat frame;
  while (cap.read(frame)) ++frames;
  EXPECT_EQ(frames, j.at("frames").get<int>());
  for (const auto& e : fs::directory_iterator(*dir_))
    EXPECT_EQ(e.path().filename().string().find(".tmp-"), std::string::npos) << e.path();
}

TEST_F(VideoCli, PrintsATableForPeopleAndStopsAtMaxFrames) {
  const auto r =
      run("--threads 1 video " + (*dir_ / "clip.avi").string() + model() + " --max-frames 10 --min-hits 1",
          *dir_);
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("10 frames, 320x240"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("track"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("fps overall"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("peak resident memory"), std::string::npos) << r.out;
}

TEST_F(VideoCli, LoopReplaysTheFileAndLogsMemory) {
  // 2.4 s of replays, resident memory sampled every 0.5 s: four real samples.
  const auto r = run("--threads 1 video " + (*dir_ / "clip.avi").string() + model() +
                         " --every 6 --loop-minutes 0.04 --memory-every 0.5 --json",
                     *dir_);
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_GE(j.at("seconds").get<double>(), 0.04 * 60 * 0.99);
  EXPECT_GE(j.at("passes").get<int>(), 2) << "2.4 s is several passes of 24 frames";
  EXPECT_GT(j.at("frames").get<int>(), kFrames);
  EXPECT_EQ(j.at("memory_every_s").get<double>(), 0.5);
  const auto rss = j.at("rss_mb_samples").get<std::vector<double>>();
  const auto at = j.at("rss_sample_s").get<std::vector<double>>();
  ASSERT_EQ(rss.size(), at.size());
  // One per 0.5 s passed; a frame slower than 0.5 s (a loaded machine) may skip one.
  ASSERT_GE(rss.size(), 3u) << j.dump(2);
  ASSERT_LE(rss.size(), 5u) << j.dump(2);
  const double peak = j.at("peak_rss_mb").get<double>();
  for (size_t k = 0; k < rss.size(); ++k) {
    EXPECT_GT(rss[k], 10) << "sample " << k << ": a process with libtorch and a model resides in more";
    EXPECT_LE(rss[k], peak + 1) << "sample " << k << " above the peak";
    EXPECT_LT(rss[k], 4096) << "sample " << k << ": a tiny model on 320x240 frames";
    EXPECT_GE(at[k], 0.5 * static_cast<double>(k + 1) - 1e-9) << "sample " << k << " too early";
    if (k > 0) {
      EXPECT_GT(at[k], at[k - 1]);
    }
  }
  // The default interval is a minute: none in 2.4 s.
  const auto d = run("--threads 1 video " + (*dir_ / "clip.avi").string() + model() +
                         " --every 6 --loop-minutes 0.04 --json",
                     *dir_);
  ASSERT_EQ(d.status, 0) << d.out << d.err;
  const auto dj = nlohmann::json::parse(d.out);
  EXPECT_EQ(dj.at("memory_every_s").get<double>(), 60.0);
  EXPECT_TRUE(dj.at("rss_mb_samples").empty());
}

TEST_F(VideoCli, MemoryIntervalMustBePositive) {
  const auto r = run("video " + (*dir_ / "clip.avi").string() + model() + " --memory-every 0", *dir_);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("--memory-every"), std::string::npos) << r.err;
}

TEST_F(VideoCli, ScanPresetsAndDetectionFlags) {
  auto scan_of = [&](const std::string& flags) {
    const auto r = run("--threads 1 video " + (*dir_ / "clip.avi").string() + model() + " --max-frames 2 --json " +
                           flags,
                       *dir_);
    EXPECT_EQ(r.status, 0) << flags << ": " << r.err;
    return r.status == 0 ? nlohmann::json::parse(r.out).at("scan") : nlohmann::json();
  };
  const auto video = scan_of("");
  EXPECT_EQ(video.at("preset"), "video");
  EXPECT_EQ(video.at("min_face"), 40);
  EXPECT_EQ(video.at("neighbors"), 2);
  EXPECT_EQ(video.at("scale_to_min_face"), true);
  const auto photo = scan_of("--scan photo");
  EXPECT_EQ(photo.at("min_face"), 30);
  EXPECT_EQ(photo.at("neighbors"), 6);
  EXPECT_EQ(photo.at("scale_to_min_face"), false);
  // Detection flags adjust either preset.
  const auto photo50 = scan_of("--scan photo --min-face 50");
  EXPECT_EQ(photo50.at("min_face"), 50);
  EXPECT_EQ(photo50.at("neighbors"), 6);
  EXPECT_EQ(scan_of("--neighbors 4").at("neighbors"), 4);
  const auto r = run("video " + (*dir_ / "clip.avi").string() + model() + " --scan fast", *dir_);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("--scan"), std::string::npos) << r.err;
}

TEST_F(VideoCli, MissingFileIsNamed) {
  const std::string missing = (*dir_ / "no_such_clip.mp4").string();
  const auto r = run("video " + missing + model(), *dir_);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("fervid: error: " + missing + ": no such file"), std::string::npos) << r.err;
}

TEST_F(VideoCli, FileThatIsNotAVideoIsNamed) {
  const fs::path fake = *dir_ / "x.mp4";
  std::ofstream(fake) << "this is not a video\n";
  const auto r = run("video " + fake.string() + model(), *dir_);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find(fake.string() + ": cannot be opened as a video"), std::string::npos) << r.err;
  // Only our message: no backend noise (GStreamer's "CRITICAL" dispose warnings) before it.
  EXPECT_EQ(r.err.find("GStreamer"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("CRITICAL"), std::string::npos) << r.err;
}

TEST_F(VideoCli, TruncatedAndEmptyMp4AreNamedWithoutBackendNoise) {
  // A real MPEG-4 file cut after its first 2,000 bytes (the index at the end is gone), and an
  // empty one.
  const fs::path whole = *dir_ / "whole.mp4", cut = *dir_ / "cut.mp4", empty = *dir_ / "zero.mp4";
  {
    cv::VideoWriter w(whole.string(), cv::VideoWriter::fourcc('m', 'p', '4', 'v'), 15, cv::Size(64, 64));
    ASSERT_TRUE(w.isOpened());
    for (int t = 0; t < 30; ++t) w.write(cv::Mat(64, 64, CV_8UC3, cv::Scalar(t * 8, 100, 50)));
  }
  std::ifstream in(whole, std::ios::binary);
  std::string bytes{std::istreambuf_iterator<char>(in), {}};
  ASSERT_GT(bytes.size(), 2000u);
  std::ofstream(cut, std::ios::binary) << bytes.substr(0, 2000);
  std::ofstream(empty, std::ios::binary).flush();
  for (const auto& f : {cut, empty}) {
    const auto r = run("video " + f.string() + model(), *dir_);
    EXPECT_NE(r.status, 0) << f;
    EXPECT_NE(r.err.find("fervid: error: " + f.string() + ": "), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("GStreamer"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("CRITICAL"), std::string::npos) << r.err;
  }
  // The intact file still plays.
  const auto ok = run("--threads 1 video " + whole.string() + model() + " --json", *dir_);
  ASSERT_EQ(ok.status, 0) << ok.err;
  EXPECT_EQ(nlohmann::json::parse(ok.out).at("frames"), 30);
}

TEST_F(VideoCli, EmptyVideoIsNamed) {
  const fs::path empty = *dir_ / "empty.avi";
  {
    cv::VideoWriter w(empty.string(), cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), 15, cv::Size(64, 64));
    ASSERT_TRUE(w.isOpened());
  }
  const auto r = run("video " + empty.string() + model(), *dir_);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find(empty.string()), std::string::npos) << r.err;
}

TEST_F(VideoCli, AbsentCameraIsNamed) {
  const auto r = run("video 9" + model(), *dir_);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("fervid: error: camera 9: cannot be opened"), std::string::npos) << r.err;
}

TEST_F(VideoCli, UnsupportedOutputExtensionIsNamed) {
  const auto r =
      run("video " + (*dir_ / "clip.avi").string() + model() + " --out " + (*dir_ / "a.gif").string(), *dir_);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.err.find("unsupported extension '.gif'"), std::string::npos) << r.err;
}

}  // namespace
