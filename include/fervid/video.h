// fervid::VideoSession: faces tracked through a video, each with its expression smoothed over
// time, and a timeline per track (design.md section 1: "in video: track id and smoothed
// probabilities over time").
//
//   fervid::Analyzer analyzer(fervid::default_model_path());
//   fervid::VideoSession session(analyzer, {/*detect_every=*/5});
//   while (capture.read(frame))
//     for (const auto& f : session.process(frame, t += 1 / fps))
//       std::cout << "track " << f.id << ": " << f.label_name << "\n";
//   for (const auto& s : session.summaries()) ...
//
// Per frame: a scene cut (cut_threshold) ends every track. On a detection frame (every
// detect_every-th, starting with the first) the detector runs over the whole frame (with
// VideoOptions::scan) or (full_scan_every > 1, between full scans) only in a window around each
// track, and its boxes are matched to the tracks greedily (confirmed tracks first, then highest
// IoU first; IoU at least match_iou). An unmatched detection starts a tentative track; it is confirmed, and given the next id, once detections have
// matched it on min_hits detection frames in a row (one-off false detections never show); ids are
// never reused. A track without a detection (frames between detections, or a face the detector
// missed) is followed by template matching: the gray patch of its last detected box is searched
// for (normalised cross-correlation, cv::TM_CCOEFF_NORMED, on a copy scaled so that the patch side
// is about follow_patch pixels) in a window around its previous box; below min_follow_score it is
// not shown on that frame. A confirmed track is dropped after max_missed consecutive detection
// frames without a matching detection, a tentative one at its first miss. Every confirmed face
// shown is classified (Analyzer::analyze_boxes, one batch per frame) and its probabilities are
// smoothed by an exponential moving average (ema_smooth) per frame shown.
//
// Frames: gray, BGR or BGRA, 8-bit, as Analyzer::analyze takes them. Boxes are in the frame's
// pixel coordinates. Times are seconds, non-decreasing, chosen by the caller (a file's frame
// index / fps; a camera's clock).
//
// Thread safety: a VideoSession holds one stream's state and is NOT thread-safe: one session per
// stream, used from one thread at a time. The Analyzer underneath is const and may be shared by
// any number of sessions (and other callers) on other threads, which detect and classify
// concurrently (no lock; see analyzer.h); it must outlive the session.
//
// Memory: constant per track (running sums) by default. VideoOptions::keep_entries also stores one
// TimelineEntry per track per frame (about 250 bytes each), up to max_entries per track. The
// tracks themselves are kept (TrackTimeline, ~200 bytes each) for the session's summaries.
#pragma once

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "fervid/analyzer.h"

namespace fervid {

struct VideoOptions {
  // Run the face detector on every Nth frame (1 = every frame); frames in between follow the
  // tracks by template matching, which costs a fraction of a detection.
  int detect_every = 1;
  // Every Mth detection frame scans the whole frame (1 = all of them, the default); the others
  // run the detector only in each track's search window, scaled so the face is about 64 pixels
  // (a few ms), and find new faces on full scans only.
  int full_scan_every = 1;
  // How whole frames are scanned: the Analyzer's cascade with these settings (cascade_path
  // empty or the Analyzer's). FaceDetectorOptions::video(): faces from 40 px, scanned at the
  // scale where that is the cascade's window, scale step 1.2, 2 neighbours: ~4x cheaper than
  // the photo defaults, so that a 640 x 360 or 640 x 480 stream gets a whole-frame detection on
  // every frame at 30 fps (experiments/bench/video.json); a face detected on one frame and missed
  // on the next is followed (min_hits and max_missed below smooth over such gaps). Set it to
  // analyzer.pipeline().detector().options() to scan frames as photos are scanned.
  FaceDetectorOptions scan = FaceDetectorOptions::video();
  // Detection frames in a row a new track must be matched on before it is shown; >= 1.
  int min_hits = 2;
  // EMA weight of the past: s_t = a * s_{t-1} + (1 - a) * p_t per frame shown, s_0 = p_0;
  // 0 = the raw probabilities. In [0, 1). Per frame, not per second: a frame's weight halves
  // after 1.4 frames at 0.6, after 6.6 frames at 0.9 (a^n = 0.5).
  double smoothing = 0.6;
  // Smallest IoU between a detection and a track's box for the detection to continue it; (0, 1].
  double match_iou = 0.3;
  // A confirmed track is dropped after this many consecutive detection frames without a
  // matching detection (at detect_every N that is up to N * max_missed frames); >= 0.
  int max_missed = 5;
  // Search window around a track's box, for following and local detection: the box grown by
  // this fraction of its side on each side; (0, 2].
  double search_margin = 0.5;
  // Scene cuts: when the Bhattacharyya distance between the gray-level histograms (32 bins, of a
  // 64-pixel-wide thumbnail) of consecutive frames exceeds this, every track ends and the frame
  // gets a full scan, so that no id jumps to a face in the new shot. 0 = off. In [0, 1]: cuts in
  // edited footage measure 0.24-0.38, motion within a shot under 0.08.
  double cut_threshold = 0.2;
  // Tracks followed at once (confirmed or not); detections beyond it start no track until one
  // ends. In [1, 10000]: bounds the work per frame, whatever a frame holds.
  int max_tracks = 64;
  // Template matching between detections.
  int follow_patch = 40;          // patch side (pixels) the matching runs at; [8, 256]
  double min_follow_score = 0.6;  // lowest normalised correlation accepted; [-1, 1]
  // Keep each track's frames in its timeline (TrackTimeline::entries), at most max_entries per
  // track (the oldest are dropped first, counted in entries_dropped). Off (the default), only the
  // running sums are kept and memory stays constant however long the stream; the CLI streams
  // every frame to --jsonl (frame_record) as it comes instead.
  bool keep_entries = false;
  int64_t max_entries = 9000;  // per track: 5 minutes at 30 fps, about 2 MB; >= 1

  // Throws std::invalid_argument naming the field and its value when one is out of range.
  void validate() const;
};

// One face on one frame.
struct TrackedFace {
  int id = 0;                   // track id, 1, 2, ... in order of confirmation; never reused
  cv::Rect box;                 // frame coordinates: the detection, or where the track was followed to
  bool detected = false;        // the box is a detection of this frame (else followed)
  FaceExpression raw;           // this frame's classification (raw.box == box)
  std::vector<float> smoothed;  // EMA of raw.probs over the frames this track was shown
  int label = -1;               // argmax of smoothed
  std::string label_name;
  float confidence = 0;  // smoothed[label]
};

// One frame of a track, as TrackTimeline keeps it (keep_entries) and the JSONL lines carry it.
struct TimelineEntry {
  int64_t frame = 0;  // index of the frame in the session, from 0
  double time_s = 0;
  cv::Rect box;
  bool detected = false;
  int raw_label = -1;
  std::vector<float> raw_probs;
  int label = -1;  // smoothed
  std::vector<float> smoothed;
};

// Everything a session remembers about one track.
struct TrackTimeline {
  int id = 0;
  double first_s = 0, last_s = 0;  // first and last frames shown on (the first: its confirmation)
  int64_t first_frame = 0, last_frame = 0;
  int64_t frames = 0;                  // frames shown
  int64_t detected_frames = 0;         // of which with a detection
  std::vector<int64_t> label_frames;   // frames per smoothed label (one per class)
  std::vector<double> raw_prob_sums;   // sums of the raw probabilities (one per class)
  std::deque<TimelineEntry> entries;   // the latest frames shown, when VideoOptions::keep_entries
  int64_t entries_dropped = 0;         // older ones dropped to stay within max_entries
  bool active = true;                  // still tracked (not dropped)
};

struct TrackSummary {
  int id = 0;
  double first_s = 0, last_s = 0;
  int64_t frames = 0, detected_frames = 0;
  int dominant = -1;               // the smoothed label with the largest share (first of equals)
  std::vector<double> share;       // fraction of the track's frames per smoothed label; sums to 1
  std::vector<double> mean_probs;  // mean of the raw probabilities over the track's frames
};

TrackSummary summarize(const TrackTimeline& timeline);

// Where the session's time went (seconds, summed over frames).
struct VideoStats {
  int64_t frames = 0, detection_frames = 0, full_scans = 0, faces = 0, cuts = 0;
  double detect_s = 0;    // the detector, full scans and local windows
  double follow_s = 0;    // template matching
  double cut_s = 0;       // scene-cut test
  double classify_s = 0;  // Analyzer::analyze_boxes: crops, resize, network
  double total_s = 0;     // all of process()
};

// s <- a * s + (1 - a) * p, element-wise; an empty `s` becomes a copy of `p` (the first frame).
// Throws std::invalid_argument for a size mismatch or `a` outside [0, 1).
void ema_smooth(std::vector<float>& s, const std::vector<float>& p, double a);

class VideoSession {
 public:
  // `analyzer` must outlive the session. Throws std::invalid_argument for bad options.
  explicit VideoSession(const Analyzer& analyzer, VideoOptions options = {});
  ~VideoSession();
  VideoSession(VideoSession&&) noexcept;
  VideoSession& operator=(VideoSession&&) noexcept;

  // The faces shown on this frame, in track id order. Throws std::invalid_argument for an empty
  // or non-8-bit frame, or a time earlier than the previous frame's (or not finite).
  std::vector<TrackedFace> process(const cv::Mat& frame, double time_s);

  // Every track so far, dropped ones included; timelines()[i].id == i + 1.
  const std::vector<TrackTimeline>& timelines() const;
  std::vector<TrackSummary> summaries() const;
  int active_tracks() const;
  int64_t frames() const;  // frames processed
  const VideoStats& stats() const;
  const VideoOptions& options() const;
  const Analyzer& analyzer() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A timeline line (JSONL): {"frame", "time", "track", "box": {x, y, w, h}, "detected", "label",
// "confidence", "probs": {class: smoothed p}, "raw_label", "raw_probs": {class: p}}. Both forms
// give the same record for the same face.
nlohmann::json frame_record(const TrackedFace& face, int64_t frame, double time_s,
                            const std::vector<std::string>& names);
nlohmann::json frame_record(int track, const TimelineEntry& entry, const std::vector<std::string>& names);

// {"track", "first_s", "last_s", "duration_s", "frames", "detected_frames", "dominant",
//  "share": {class: fraction}, "mean_probs": {class: p}}.
nlohmann::json to_json(const TrackSummary& summary, const std::vector<std::string>& names);

// Draws every tracked face: box, "#id label 87%" (smoothed), one colour per smoothed label
// (draw_expressions' look). `image`: as draw_expressions takes it.
void draw_tracked_faces(cv::Mat& image, const std::vector<TrackedFace>& faces);

}  // namespace fervid
