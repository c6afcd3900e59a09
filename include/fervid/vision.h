// Faces in images: detection, landmarks and alignment, and the ONE preprocessing function
// (design.md section 1; style.md habit 10). Training, evaluation, prediction, video and the
// server all prepare a face with preprocess_face(), so a face looks the same everywhere.
//
// Images: cv::Mat, 8 bits per channel, CV_8UC1 (gray), CV_8UC3 (BGR, OpenCV's order) or
// CV_8UC4 (BGRA); any size. Boxes and landmarks are in the input image's pixel coordinates
// (x right, y down). Returned Mats are owned by the caller. No torch here: normalisation to
// floats happens in the core.
#pragma once

#include <opencv2/core.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "fervid/image_io.h"

namespace fervid {

inline constexpr const char* kDefaultCascadePath =
    "/usr/share/opencv4/haarcascades/haarcascade_frontalface_alt2.xml";
inline constexpr const char* kDefaultLandmarkModelPath =
    "/usr/share/dlib/shape_predictor_68_face_landmarks.dat";

// Intersection over union of two boxes, in [0, 1]; 0 when either is empty.
double box_iou(const cv::Rect& a, const cv::Rect& b);

// ---- detection ---------------------------------------------------------------------------------

// Viola-Jones multi-scale detection (the paper's "cascade of candidate windows").
// Defaults chosen on the face_recognition example photos: with them every hand-annotated face
// (tests/fixtures/face_boxes.json, 9 faces in 8 photos) is found with IoU >= 0.58, with no
// false positive, and the face count is right on the set's 18 other photos. OpenCV's
// frontalface_default cascade needs a coarse scale step (1.2) to avoid false positives there
// and then reaches only IoU 0.52 on one face, so the default here is frontalface_alt2.
struct FaceDetectorOptions {
  std::string cascade_path = kDefaultCascadePath;  // an OpenCV Haar or LBP cascade XML
  // Window growth per pyramid level (OpenCV's default): coarser steps miss faces between scales.
  double scale_factor = 1.1;
  // Overlapping raw detections a face needs: 6 removes the texture false positives that
  // 4 and 5 keep (a hand, a flag); 6 to 8 give the same results on the photos.
  int min_neighbors = 6;
  // Smallest and largest face side, in pixels of the ORIGINAL image; max 0 = no limit.
  int min_face_size = 30;
  int max_face_size = 0;
  // Detection runs on a copy whose longer side is at most this (0 = full resolution): a
  // 1920 x 1080 frame is scanned at 640 x 360, 9x fewer windows; boxes are scaled back.
  // A face must still cover the cascade's window (20 px for alt2) in that copy: in a 1080p
  // frame faces under about 60 px are missed; set 0 for small faces in large frames.
  int max_detect_side = 640;
  // Also shrink the copy so that min_face_size covers exactly the cascade's window (20 px for
  // alt2: min_face_size 40 scans at half size), when that is smaller than max_detect_side's
  // copy. The cascade's window stride is then coarser in original pixels: about 4x fewer
  // windows at min_face_size 40, a little less recall on faces near the minimum.
  bool scale_to_min_face = false;
  bool equalize_histogram = true;  // evens out exposure before the cascade (OpenCV's sample does this)

  // The whole-frame scan settings VideoSession uses by default (VideoOptions::scan): faces from
  // 40 px, scanned at the scale where 40 px is the cascade's window (half size for alt2), scale
  // step 1.2, 2 neighbours; cascade_path empty (= the Analyzer's). About 4x cheaper than the
  // defaults above on 640 x 360 and 640 x 480 frames (experiments/bench/video.json), so that a
  // whole-frame detection fits in every frame at 30 fps; on the hand-annotated photos
  // (tests/fixtures/face_boxes.json) they find every face too (tests/vision/test_video_data.cpp).
  static FaceDetectorOptions video();

  // Throws std::invalid_argument naming the field and its value when one is out of range
  // (cascade_path is checked by FaceDetector, which loads it).
  void validate() const;
};

class FaceDetector {
 public:
  // Loads the cascade; throws DataError naming the file when it is missing or not a cascade,
  // std::invalid_argument for out-of-range options (with the value).
  FaceDetector();  // the defaults above
  explicit FaceDetector(FaceDetectorOptions options);
  ~FaceDetector();
  FaceDetector(FaceDetector&&) noexcept;
  FaceDetector& operator=(FaceDetector&&) noexcept;

  // Every face in `image` (gray, BGR or BGRA; CV_8U; any size), as boxes inside the image,
  // sorted left to right (then top to bottom, then smaller first). Empty image: invalid_argument.
  // Thread-safe and concurrent: OpenCV's cascade is not re-entrant, so each call borrows one
  // from a pool that loads another copy of the cascade file when every copy is busy (the pool
  // grows to the number of threads detecting at once; no lock is held while scanning).
  std::vector<cv::Rect> detect(const cv::Mat& image) const;
  // The same with other scan settings (scale_factor, min_neighbors, face sizes, max_detect_side,
  // equalize_histogram) for this call, on this detector's cascade: `scan.cascade_path` must be
  // empty or this detector's (else invalid_argument); out-of-range values: invalid_argument.
  std::vector<cv::Rect> detect(const cv::Mat& image, const FaceDetectorOptions& scan) const;

  const FaceDetectorOptions& options() const { return options_; }
  // Copies of the cascade loaded so far (1, plus one per extra concurrent caller ever seen).
  int cascades_loaded() const;

 private:
  std::vector<cv::Rect> scan(const cv::Mat& image, const FaceDetectorOptions& o) const;
  struct State;
  FaceDetectorOptions options_;
  std::unique_ptr<State> state_;
};

// The box of largest area (first of equals), or an empty Rect when `boxes` is empty.
cv::Rect largest_face(const std::vector<cv::Rect>& boxes);

// ---- landmarks and alignment ---------------------------------------------------------------

inline constexpr int kNumLandmarks = 68;  // iBUG 300-W order: 36-41 one eye, 42-47 the other

// The mean of points 36-41 (the eye on the image's left) and of 42-47 (on the image's right).
cv::Point2f left_eye_center(const std::vector<cv::Point2f>& landmarks);
cv::Point2f right_eye_center(const std::vector<cv::Point2f>& landmarks);

// Angle of the eye line, in degrees, in image coordinates (y down): atan2(dy, dx) from the
// left eye centre to the right one. Positive when the right eye is lower in the image. Rotating
// the image by this angle with cv::getRotationMatrix2D (positive = counter-clockwise on screen)
// about the eye midpoint makes the eye line horizontal. Throws invalid_argument unless 68 points.
double eye_line_angle(const std::vector<cv::Point2f>& landmarks);

class LandmarkAligner {
 public:
  // Loads dlib's 68-point shape predictor (about 100 MB, 1-2 s): load once, reuse.
  // Throws DataError naming the file when it is missing or not a shape predictor.
  explicit LandmarkAligner(const std::string& model_path = kDefaultLandmarkModelPath);
  ~LandmarkAligner();
  LandmarkAligner(LandmarkAligner&&) noexcept;
  LandmarkAligner& operator=(LandmarkAligner&&) noexcept;

  // The 68 landmarks of the face in `box` (from FaceDetector; may extend past the border).
  // `image`: gray, BGR or BGRA, CV_8U. Thread-safe (the predictor is read-only).
  std::vector<cv::Point2f> landmarks(const cv::Mat& image, const cv::Rect& box) const;

 private:
  struct Model;
  std::unique_ptr<Model> model_;
};

// ---- the one preprocessing function ---------------------------------------------------------

enum class BorderMode : uint8_t {
  kReplicate,  // repeat the edge pixels (default: no artificial black edge for the network to learn)
  kConstant,   // fill with PreprocessOptions::border_value
};

struct PreprocessOptions {
  int size = 48;  // output side: 48 for FER-native models, 224 for the paper's input
  // Added on every side, as a fraction of the box's width (left, right) and height (top,
  // bottom). 0.1 frames a Haar box (brows to chin) like a FER2013 face: forehead and chin in view.
  double margin = 0.1;
  bool align = false;  // rotate about the eye midpoint so the eye line is horizontal (needs landmarks)
  BorderMode border = BorderMode::kReplicate;
  uint8_t border_value = 0;
};

// Prepares one face: [alignment: rotate about the eye midpoint by eye_line_angle(landmarks);
// the box centre is rotated with the image] -> crop the box grown by the margin (regions past
// the image border are filled per opt.border) -> grayscale (BGR weights of cv::cvtColor) ->
// BILINEAR resize (cv::INTER_LINEAR, half-pixel centres) to opt.size x opt.size.
// Output: CV_8UC1, continuous, gray levels 0..255, newly allocated.
// `landmarks` (68 points, image coordinates) is required when opt.align is set and ignored
// otherwise. Throws std::invalid_argument (with the values) for an empty or non-8-bit image, an
// empty box, a box that does not touch the image, size < 1, margin < 0 or > 2.
cv::Mat preprocess_face(const cv::Mat& image, const cv::Rect& box, const PreprocessOptions& opt,
                        const std::vector<cv::Point2f>* landmarks = nullptr);

// ---- detector + aligner + preprocessing in one object --------------------------------------

struct FacePipelineOptions {
  FaceDetectorOptions detector;
  PreprocessOptions preprocess;  // preprocess.align = true loads the landmark model
  std::string landmark_model_path = kDefaultLandmarkModelPath;
};

struct PreparedFace {
  cv::Rect box;                        // detector box, input image coordinates
  std::vector<cv::Point2f> landmarks;  // 68 points when aligned, else empty
  double eye_angle = 0.0;              // eye_line_angle(landmarks) in degrees; 0 when not aligned
  cv::Mat face;                        // preprocess_face() output: CV_8UC1, size x size
};

class FacePipeline {
 public:
  FacePipeline();  // detection with the defaults, no alignment, 48 x 48 crops
  explicit FacePipeline(FacePipelineOptions options);
  ~FacePipeline();
  FacePipeline(FacePipeline&&) noexcept;
  FacePipeline& operator=(FacePipeline&&) noexcept;

  // Every face in `image`, left to right (FaceDetector's order), each prepared.
  std::vector<PreparedFace> run(const cv::Mat& image) const;
  // One face whose box is already known (a tracker's, a dataset's).
  PreparedFace prepare(const cv::Mat& image, const cv::Rect& box) const;
  // The same with other crop settings (e.g. margin 0 for an image that is already a face);
  // preprocess.align must match the pipeline's (the landmark model is loaded only when aligning).
  PreparedFace prepare(const cv::Mat& image, const cv::Rect& box, const PreprocessOptions& preprocess) const;

  const FacePipelineOptions& options() const { return options_; }
  const FaceDetector& detector() const { return detector_; }
  const LandmarkAligner* aligner() const { return aligner_.get(); }  // null unless aligning

 private:
  FacePipelineOptions options_;
  FaceDetector detector_;
  std::unique_ptr<LandmarkAligner> aligner_;
};

}  // namespace fervid
