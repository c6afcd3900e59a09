// Face tracking and expression smoothing over a video (include/fervid/video.h).
#include "fervid/video.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <tuple>

#include "vision_internal.h"

namespace fervid {

namespace {

template <typename T>
std::string str(const T& v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

void require(bool ok, const char* field, const std::string& range, const std::string& value) {
  if (!ok)
    throw std::invalid_argument(std::string("VideoOptions: ") + field + " must be " + range + ", got " +
                                value);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int argmax(const std::vector<float>& v) {
  return v.empty() ? -1 : static_cast<int>(std::max_element(v.begin(), v.end()) - v.begin());
}

nlohmann::json named(const std::vector<float>& v, const std::vector<std::string>& names) {
  nlohmann::json j = nlohmann::json::object();
  for (size_t k = 0; k < v.size(); ++k) j[k < names.size() ? names[k] : std::to_string(k)] = v[k];
  return j;
}

nlohmann::json named(const std::vector<double>& v, const std::vector<std::string>& names) {
  nlohmann::json j = nlohmann::json::object();
  for (size_t k = 0; k < v.size(); ++k) j[k < names.size() ? names[k] : std::to_string(k)] = v[k];
  return j;
}

std::string name_of(int label, const std::vector<std::string>& names) {
  return label >= 0 && static_cast<size_t>(label) < names.size() ? names[static_cast<size_t>(label)] : "";
}

nlohmann::json box_json(const cv::Rect& b) {
  return {{"x", b.x}, {"y", b.y}, {"w", b.width}, {"h", b.height}};
}

}  // namespace

void VideoOptions::validate() const {
  require(detect_every >= 1, "detect_every", ">= 1", str(detect_every));
  require(full_scan_every >= 1, "full_scan_every", ">= 1", str(full_scan_every));
  require(min_hits >= 1, "min_hits", ">= 1", str(min_hits));
  require(smoothing >= 0.0 && smoothing < 1.0, "smoothing", "in [0, 1)", str(smoothing));
  require(match_iou > 0.0 && match_iou <= 1.0, "match_iou", "in (0, 1]", str(match_iou));
  require(max_missed >= 0, "max_missed", ">= 0", str(max_missed));
  require(cut_threshold >= 0.0 && cut_threshold <= 1.0, "cut_threshold", "in [0, 1]", str(cut_threshold));
  require(search_margin > 0.0 && search_margin <= 2.0, "search_margin", "in (0, 2]", str(search_margin));
  require(follow_patch >= 8 && follow_patch <= 256, "follow_patch", "in [8, 256]", str(follow_patch));
  require(min_follow_score >= -1.0 && min_follow_score <= 1.0, "min_follow_score", "in [-1, 1]",
          str(min_follow_score));
  require(max_entries >= 1, "max_entries", ">= 1", str(max_entries));
  require(max_tracks >= 1 && max_tracks <= 10000, "max_tracks", "in [1, 10000]", str(max_tracks));
  try {
    scan.validate();
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string("VideoOptions::scan: ") + e.what());
  }
}

void ema_smooth(std::vector<float>& s, const std::vector<float>& p, double a) {
  if (!(a >= 0.0 && a < 1.0))
    throw std::invalid_argument("ema_smooth: weight of the past must be in [0, 1), got " + str(a));
  if (s.empty()) {
    s = p;
    return;
  }
  if (s.size() != p.size()) {
    throw std::invalid_argument("ema_smooth: " + std::to_string(s.size()) + " smoothed values but " +
                                std::to_string(p.size()) + " probabilities");
  }
  for (size_t k = 0; k < s.size(); ++k) s[k] = static_cast<float>(a * s[k] + (1.0 - a) * p[k]);
}

TrackSummary summarize(const TrackTimeline& t) {
  TrackSummary s;
  s.id = t.id;
  s.first_s = t.first_s;
  s.last_s = t.last_s;
  s.frames = t.frames;
  s.detected_frames = t.detected_frames;
  const double n = t.frames > 0 ? static_cast<double>(t.frames) : 1.0;
  for (const auto c : t.label_frames) s.share.push_back(static_cast<double>(c) / n);
  for (const auto p : t.raw_prob_sums) s.mean_probs.push_back(p / n);
  if (t.frames > 0 && !s.share.empty())
    s.dominant = static_cast<int>(std::max_element(s.share.begin(), s.share.end()) - s.share.begin());
  return s;
}

// ---- the session ------------------------------------------------------------------------------

// Local detection (full_scan_every > 1): a track's search window is scaled so that its face is
// kLocalFaceSide pixels, and the detector looks there for faces from kLocalMinFace times that up
// to the whole window, so a face may shrink or grow between detections.
namespace {
constexpr int kLocalFaceSide = 64;
constexpr double kLocalMinFace = 0.6;
}  // namespace

struct VideoSession::Impl {
  struct Track {
    int id = 0;      // 0 while tentative
    int hits = 0;    // detection frames in a row with a matching detection
    int missed = 0;  // detection frames in a row without one
    cv::Rect box;    // where the face is now; may reach past the frame
    cv::Mat patch;   // gray patch of the last detection, scaled by (sx, sy)
    double sx = 1, sy = 1;
    std::vector<float> smoothed;
  };
  enum class Seen : uint8_t { kNo, kDetected, kFollowed };

  Impl(const Analyzer& a, VideoOptions o) : analyzer(&a), options(std::move(o)) {
    options.validate();
    const auto& cascade = a.pipeline().detector().options().cascade_path;
    options.scan.detector = a.pipeline().detector().kind();  // the Analyzer's detector, with these scan settings
    if (options.scan.detector == DetectorKind::kHaar && !options.scan.cascade_path.empty() &&
        options.scan.cascade_path != cascade) {
      throw std::invalid_argument("VideoOptions::scan: cascade_path " + options.scan.cascade_path +
                                  " is not the Analyzer's (" + cascade + "); leave it empty");
    }
    if (options.full_scan_every > 1) {
      auto d = a.pipeline().detector().options();
      d.min_face_size = static_cast<int>(std::lround(kLocalFaceSide * kLocalMinFace));
      d.max_face_size = 0;
      d.max_detect_side = 0;
      local_detector = std::make_unique<FaceDetector>(d);
    }
  }

  const Analyzer* analyzer;
  VideoOptions options;
  std::unique_ptr<FaceDetector> local_detector;  // only with full_scan_every > 1
  std::vector<Track> tracks;                     // tentative and confirmed, in order of creation
  std::vector<TrackTimeline> timelines;          // confirmed tracks, by id - 1
  int64_t frame_index = 0;
  double last_time = -HUGE_VAL;
  cv::Mat last_histogram;  // of the previous frame, for the scene-cut test
  VideoStats stats;

  // True when `gray` starts a new shot (cut_threshold); remembers its histogram.
  bool scene_cut(const cv::Mat& gray) {
    if (options.cut_threshold <= 0) return false;
    const int w = std::min(64, gray.cols);
    const int h = std::max(1, static_cast<int>(std::lround(static_cast<double>(gray.rows) * w / gray.cols)));
    cv::Mat thumb, hist;
    cv::resize(gray, thumb, cv::Size(w, h), 0, 0, cv::INTER_AREA);
    const int channels[] = {0}, bins[] = {32};
    const float range[] = {0, 256};
    const float* ranges[] = {range};
    cv::calcHist(&thumb, 1, channels, cv::Mat(), hist, 1, bins, ranges);
    hist /= static_cast<double>(thumb.total());
    const bool cut = !last_histogram.empty() &&
                     cv::compareHist(last_histogram, hist, cv::HISTCMP_BHATTACHARYYA) > options.cut_threshold;
    last_histogram = hist;
    return cut;
  }

  cv::Rect search_window(const cv::Rect& box, const cv::Rect& bounds) const {
    const int gx = static_cast<int>(std::lround(options.search_margin * box.width));
    const int gy = static_cast<int>(std::lround(options.search_margin * box.height));
    return cv::Rect(box.x - gx, box.y - gy, box.width + 2 * gx, box.height + 2 * gy) & bounds;
  }

  static void resize_to(const cv::Mat& src, cv::Mat& dst, cv::Size size) {
    cv::resize(src, dst, size, 0, 0, size.width < src.cols ? cv::INTER_AREA : cv::INTER_LINEAR);
  }

  void remember_patch(Track& t, const cv::Mat& gray) const {
    const cv::Rect r = t.box & cv::Rect(0, 0, gray.cols, gray.rows);
    if (r.area() <= 0) {  // out of view: nothing to follow
      t.patch = cv::Mat();
      return;
    }
    t.box = r;  // the patch is what is in view: follow that
    const double s = static_cast<double>(options.follow_patch) / std::max(r.width, r.height);
    const int w = std::max(1, static_cast<int>(std::lround(r.width * s)));
    const int h = std::max(1, static_cast<int>(std::lround(r.height * s)));
    resize_to(gray(r), t.patch, cv::Size(w, h));
    t.sx = static_cast<double>(w) / r.width;
    t.sy = static_cast<double>(h) / r.height;
  }

  // Where the track's patch is now, searched for in its window; nullopt when the best
  // correlation is below min_follow_score (or the window is too small to search).
  std::optional<cv::Rect> follow(const Track& t, const cv::Mat& gray) const {
    if (t.patch.empty()) return std::nullopt;
    const cv::Rect window = search_window(t.box, cv::Rect(0, 0, gray.cols, gray.rows));
    const cv::Size small(static_cast<int>(std::lround(window.width * t.sx)),
                         static_cast<int>(std::lround(window.height * t.sy)));
    if (small.width < t.patch.cols + 2 || small.height < t.patch.rows + 2) return std::nullopt;
    cv::Mat region, score;
    resize_to(gray(window), region, small);
    cv::matchTemplate(region, t.patch, score, cv::TM_CCOEFF_NORMED);
    double best = 0;
    cv::Point at;
    cv::minMaxLoc(score, nullptr, &best, nullptr, &at);
    if (!std::isfinite(best) || best < options.min_follow_score) return std::nullopt;
    // Sub-pixel peak: the vertex of a parabola through the best score and its two neighbours.
    auto vertex = [](float lo, float mid, float hi) {
      const float d = lo - 2 * mid + hi;
      return d < 0 ? std::clamp(0.5f * (lo - hi) / d, -0.5f, 0.5f) : 0.0f;
    };
    double dx = 0, dy = 0;
    if (at.x > 0 && at.x + 1 < score.cols)
      dx = vertex(score.at<float>(at.y, at.x - 1), score.at<float>(at.y, at.x),
                  score.at<float>(at.y, at.x + 1));
    if (at.y > 0 && at.y + 1 < score.rows)
      dy = vertex(score.at<float>(at.y - 1, at.x), score.at<float>(at.y, at.x),
                  score.at<float>(at.y + 1, at.x));
    const int x = window.x + static_cast<int>(std::lround((at.x + dx) / t.sx));
    const int y = window.y + static_cast<int>(std::lround((at.y + dy) / t.sy));
    return cv::Rect(x, y, t.box.width, t.box.height);
  }

  // The detector run only in each track's search window (scaled, see kLocalFaceSide).
  // `frame`: the colour frame (BlazeFace reads colour; Haar converts to gray itself).
  std::vector<cv::Rect> detect_locally(const cv::Mat& frame) const {
    const cv::Rect bounds(0, 0, frame.cols, frame.rows);
    std::vector<cv::Rect> found;
    for (const auto& t : tracks) {
      const cv::Rect window = search_window(t.box, bounds);
      const double s = static_cast<double>(kLocalFaceSide) / std::max(t.box.width, t.box.height);
      const cv::Size size(static_cast<int>(std::lround(window.width * s)),
                          static_cast<int>(std::lround(window.height * s)));
      if (size.width < kLocalFaceSide / 2 || size.height < kLocalFaceSide / 2)
        continue;  // mostly out of view
      cv::Mat region;
      resize_to(frame(window), region, size);
      const double sx = static_cast<double>(size.width) / window.width,
                   sy = static_cast<double>(size.height) / window.height;
      for (const auto& b : local_detector->detect(region)) {
        const int x0 = window.x + static_cast<int>(std::lround(b.x / sx));
        const int y0 = window.y + static_cast<int>(std::lround(b.y / sy));
        const int x1 = window.x + static_cast<int>(std::lround((b.x + b.width) / sx));
        const int y1 = window.y + static_cast<int>(std::lround((b.y + b.height) / sy));
        const cv::Rect r = cv::Rect(x0, y0, x1 - x0, y1 - y0) & bounds;
        bool seen = r.area() <= 0;  // windows overlap: one face may be found twice
        for (const auto& k : found) seen = seen || box_iou(k, r) >= 0.5;
        if (!seen) found.push_back(r);
      }
    }
    return found;
  }

  void confirm(Track& t) {
    t.id = static_cast<int>(timelines.size()) + 1;
    TrackTimeline tl;
    tl.id = t.id;
    const size_t k = analyzer->class_names().size();
    tl.label_frames.assign(k, 0);
    tl.raw_prob_sums.assign(k, 0.0);
    timelines.push_back(std::move(tl));
  }

  void record(TrackTimeline& tl, const TrackedFace& f, double time_s) {
    if (tl.frames == 0) {
      tl.first_s = time_s;
      tl.first_frame = frame_index;
    }
    tl.last_s = time_s;
    tl.last_frame = frame_index;
    ++tl.frames;
    if (f.detected) ++tl.detected_frames;
    if (f.label >= 0 && static_cast<size_t>(f.label) < tl.label_frames.size())
      ++tl.label_frames[static_cast<size_t>(f.label)];
    for (size_t k = 0; k < tl.raw_prob_sums.size() && k < f.raw.probs.size(); ++k)
      tl.raw_prob_sums[k] += f.raw.probs[k];
    if (options.keep_entries) {
      TimelineEntry e;
      e.frame = frame_index;
      e.time_s = time_s;
      e.box = f.box;
      e.detected = f.detected;
      e.raw_label = f.raw.label;
      e.raw_probs = f.raw.probs;
      e.label = f.label;
      e.smoothed = f.smoothed;
      tl.entries.push_back(std::move(e));
      if (static_cast<int64_t>(tl.entries.size()) > options.max_entries) {
        tl.entries.pop_front();
        ++tl.entries_dropped;
      }
    }
  }

  std::vector<TrackedFace> process(const cv::Mat& frame, double time_s) {
    using clock = std::chrono::steady_clock;
    const auto t_start = clock::now();
    if (!std::isfinite(time_s) || time_s < last_time) {
      throw std::invalid_argument("VideoSession::process: time " + str(time_s) +
                                  " s is not finite or earlier than the previous frame's " + str(last_time) +
                                  " s");
    }
    const cv::Mat gray = vision_internal::to_gray(frame, "VideoSession::process");
    const cv::Rect bounds(0, 0, gray.cols, gray.rows);
    const auto t_cut = clock::now();
    const bool cut = scene_cut(gray);
    stats.cut_s += seconds_since(t_cut);
    if (cut) {
      ++stats.cuts;
      for (const auto& t : tracks)
        if (t.id > 0) timelines[static_cast<size_t>(t.id - 1)].active = false;
      tracks.clear();
    }
    std::vector<Seen> seen(tracks.size(), Seen::kNo);
    std::vector<bool> drop(tracks.size(), false);

    auto follow_track = [&](size_t i) {
      const auto t0 = clock::now();
      const auto moved = follow(tracks[i], gray);
      stats.follow_s += seconds_since(t0);
      if (moved && (*moved & bounds).area() > 0) {
        tracks[i].box = *moved;
        seen[i] = Seen::kFollowed;
      } else if (tracks[i].id == 0) {
        drop[i] = true;  // a tentative track lost is forgotten
      }
    };

    if (cut || frame_index % options.detect_every == 0) {
      const bool full = cut || stats.detection_frames % options.full_scan_every == 0;
      ++stats.detection_frames;
      if (full) ++stats.full_scans;
      const auto t0 = clock::now();
      const auto found = full ? analyzer->pipeline().detector().detect(frame, options.scan) : detect_locally(frame);
      stats.detect_s += seconds_since(t0);
      // Greedy matching: confirmed tracks before tentative ones, then the highest IoU first
      // (ties: lower track index, then lower detection index).
      std::vector<std::tuple<bool, double, size_t, size_t>> pairs;
      for (size_t i = 0; i < tracks.size(); ++i)
        for (size_t d = 0; d < found.size(); ++d) {
          const double iou = box_iou(tracks[i].box & bounds, found[d]);
          if (iou >= options.match_iou) pairs.emplace_back(tracks[i].id == 0, -iou, i, d);
        }
      std::sort(pairs.begin(), pairs.end());
      std::vector<int> track_match(tracks.size(), -1), det_match(found.size(), -1);
      for (const auto& [tentative, neg_iou, i, d] : pairs) {
        if (track_match[i] >= 0 || det_match[d] >= 0) continue;
        track_match[i] = static_cast<int>(d);
        det_match[d] = static_cast<int>(i);
      }
      for (size_t i = 0; i < tracks.size(); ++i) {
        auto& t = tracks[i];
        if (track_match[i] >= 0) {
          t.box = found[static_cast<size_t>(track_match[i])];
          t.missed = 0;
          ++t.hits;
          remember_patch(t, gray);
          if (t.id == 0 && t.hits >= options.min_hits) confirm(t);
          seen[i] = Seen::kDetected;
        } else {
          t.hits = 0;
          drop[i] = t.id == 0 || ++t.missed > options.max_missed;
        }
      }
      // Unmatched confirmed tracks are followed, unless they now sit on a face another track
      // holds (two tracks drifted onto one face).
      for (size_t i = 0; i < tracks.size(); ++i) {
        if (track_match[i] >= 0 || drop[i]) continue;
        bool taken = false;
        for (size_t k = 0; k < tracks.size() && !taken; ++k)
          taken = track_match[k] >= 0 && box_iou(tracks[i].box & bounds, tracks[k].box) >= options.match_iou;
        if (!taken) follow_track(i);
      }
      // Unmatched detections start tentative tracks, except those lying mostly inside (or
      // around) a tracked face: a mouth or a shoulder the cascade also fired on.
      auto nested = [&](const cv::Rect& r) {
        for (size_t k = 0; k < tracks.size(); ++k) {
          const cv::Rect other = tracks[k].box & bounds;
          if (!drop[k] && (r & other).area() >= 0.5 * std::min(r.area(), other.area())) return true;
        }
        return false;
      };
      for (size_t d = 0; d < found.size(); ++d) {
        if (det_match[d] >= 0 || nested(found[d])) continue;
        // A frame of a thousand "faces" must not become a thousand tracks to follow on every frame.
        if (static_cast<int>(tracks.size()) >= options.max_tracks) break;
        Track t;
        t.box = found[d];
        t.hits = 1;
        remember_patch(t, gray);
        if (options.min_hits <= 1) confirm(t);
        tracks.push_back(std::move(t));
        seen.push_back(Seen::kDetected);
        drop.push_back(false);
      }
    } else {
      for (size_t i = 0; i < tracks.size(); ++i) follow_track(i);
    }

    // The confirmed faces shown, in id order, classified in one batch.
    std::vector<size_t> shown;
    for (size_t i = 0; i < tracks.size(); ++i)
      if (tracks[i].id > 0 && !drop[i] && seen[i] != Seen::kNo) shown.push_back(i);
    std::sort(shown.begin(), shown.end(), [&](size_t a, size_t b) { return tracks[a].id < tracks[b].id; });
    std::vector<cv::Rect> boxes;
    boxes.reserve(shown.size());
    for (const auto i : shown) boxes.push_back(tracks[i].box & bounds);
    const auto t0 = clock::now();
    auto raw = analyzer->analyze_boxes(gray, boxes);
    stats.classify_s += seconds_since(t0);

    const auto& names = analyzer->class_names();
    std::vector<TrackedFace> out(shown.size());
    for (size_t k = 0; k < shown.size(); ++k) {
      auto& t = tracks[shown[k]];
      auto& f = out[k];
      f.id = t.id;
      f.box = boxes[k];
      f.detected = seen[shown[k]] == Seen::kDetected;
      f.raw = std::move(raw[k]);
      ema_smooth(t.smoothed, f.raw.probs, options.smoothing);
      f.smoothed = t.smoothed;
      f.label = argmax(f.smoothed);
      f.label_name = name_of(f.label, names);
      f.confidence = f.label >= 0 ? f.smoothed[static_cast<size_t>(f.label)] : 0.0f;
      record(timelines[static_cast<size_t>(t.id - 1)], f, time_s);
    }

    size_t kept = 0;
    for (size_t i = 0; i < tracks.size(); ++i) {
      if (drop[i]) {
        if (tracks[i].id > 0) timelines[static_cast<size_t>(tracks[i].id - 1)].active = false;
        continue;
      }
      if (kept != i) tracks[kept] = std::move(tracks[i]);
      ++kept;
    }
    tracks.resize(kept);

    last_time = time_s;
    ++frame_index;
    ++stats.frames;
    stats.faces += static_cast<int64_t>(out.size());
    stats.total_s += seconds_since(t_start);
    return out;
  }
};

VideoSession::VideoSession(const Analyzer& analyzer, VideoOptions options)
    : impl_(std::make_unique<Impl>(analyzer, std::move(options))) {}
VideoSession::~VideoSession() = default;
VideoSession::VideoSession(VideoSession&&) noexcept = default;
VideoSession& VideoSession::operator=(VideoSession&&) noexcept = default;

std::vector<TrackedFace> VideoSession::process(const cv::Mat& frame, double time_s) {
  return impl_->process(frame, time_s);
}
const std::vector<TrackTimeline>& VideoSession::timelines() const { return impl_->timelines; }
std::vector<TrackSummary> VideoSession::summaries() const {
  std::vector<TrackSummary> out;
  out.reserve(impl_->timelines.size());
  for (const auto& t : impl_->timelines) out.push_back(summarize(t));
  return out;
}
int VideoSession::active_tracks() const { return static_cast<int>(impl_->tracks.size()); }
int64_t VideoSession::frames() const { return impl_->frame_index; }
const VideoStats& VideoSession::stats() const { return impl_->stats; }
const VideoOptions& VideoSession::options() const { return impl_->options; }
const Analyzer& VideoSession::analyzer() const { return *impl_->analyzer; }

// ---- JSON and drawing -------------------------------------------------------------------------

nlohmann::json frame_record(const TrackedFace& f, int64_t frame, double time_s,
                            const std::vector<std::string>& names) {
  return {{"frame", frame},
          {"time", time_s},
          {"track", f.id},
          {"box", box_json(f.box)},
          {"detected", f.detected},
          {"label", name_of(f.label, names)},
          {"confidence", f.label >= 0 ? f.smoothed.at(static_cast<size_t>(f.label)) : 0.0f},
          {"probs", named(f.smoothed, names)},
          {"raw_label", name_of(f.raw.label, names)},
          {"raw_probs", named(f.raw.probs, names)}};
}

nlohmann::json frame_record(int track, const TimelineEntry& e, const std::vector<std::string>& names) {
  return {{"frame", e.frame},
          {"time", e.time_s},
          {"track", track},
          {"box", box_json(e.box)},
          {"detected", e.detected},
          {"label", name_of(e.label, names)},
          {"confidence", e.label >= 0 ? e.smoothed.at(static_cast<size_t>(e.label)) : 0.0f},
          {"probs", named(e.smoothed, names)},
          {"raw_label", name_of(e.raw_label, names)},
          {"raw_probs", named(e.raw_probs, names)}};
}

nlohmann::json to_json(const TrackSummary& s, const std::vector<std::string>& names) {
  return {{"track", s.id},
          {"first_s", s.first_s},
          {"last_s", s.last_s},
          {"duration_s", s.last_s - s.first_s},
          {"frames", s.frames},
          {"detected_frames", s.detected_frames},
          {"dominant", name_of(s.dominant, names)},
          {"share", named(s.share, names)},
          {"mean_probs", named(s.mean_probs, names)}};
}

void draw_tracked_faces(cv::Mat& image, const std::vector<TrackedFace>& faces) {
  std::vector<FaceExpression> shown;
  shown.reserve(faces.size());
  for (const auto& f : faces) {
    FaceExpression e;
    e.box = f.box;
    e.landmarks = f.raw.landmarks;
    e.label = f.label;
    e.label_name = "#" + std::to_string(f.id) + " " + f.label_name;
    e.confidence = f.confidence;
    shown.push_back(std::move(e));
  }
  draw_expressions(image, shown);
}

}  // namespace fervid
