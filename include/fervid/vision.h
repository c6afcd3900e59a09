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

#include "fervid/face_recipe.h"
#include "fervid/image_io.h"

namespace fervid {

inline constexpr const char* kDefaultCascadePath =
    "/usr/share/opencv4/haarcascades/haarcascade_frontalface_alt2.xml";
inline constexpr const char* kDefaultLandmarkModelPath =
    "/usr/share/dlib/shape_predictor_68_face_landmarks.dat";

// Intersection over union of two boxes, in [0, 1]; 0 when either is empty.
double box_iou(const cv::Rect& a, const cv::Rect& b);

// ---- detection ----------------------------------------------------------------------------------

// Which face detector runs. BlazeFace (the default): MediaPipe's neural detector, "back camera"
// model (256 x 256 input, 896 anchors), a box and 6 keypoints per face, shipped in
// models/third_party/blazeface/ (src/vision/blazeface.cpp). Haar: OpenCV's Viola-Jones cascade
// (the paper's "cascade of candidate windows"), kept for reproducing the paper and as a fallback;
// it gives boxes without keypoints.
enum class DetectorKind : uint8_t { kBlazeFace, kHaar };
// "blazeface" / "haar"; parse_detector_kind throws std::invalid_argument listing the choices.
const char* detector_kind_name(DetectorKind kind);
DetectorKind parse_detector_kind(const std::string& name);

// BlazeFace's keypoints, in the model's order. "Right" is the person's right: in an unmirrored
// photo of a frontal face the right eye is on the image's left.
enum BlazeFaceKeypoint : int { kRightEye = 0, kLeftEye, kNoseTip, kMouthCenter, kRightEarTragion, kLeftEarTragion };
inline constexpr int kNumBlazeFaceKeypoints = 6;

// The shipped BlazeFace graph (models/third_party/blazeface/blazeface.json, found as the default
// model is: shipped_model_path()); std::runtime_error when it is not there.
std::string default_blazeface_path();

struct DetectedFace {
  cv::Rect box;                        // input image coordinates, clipped to the image
  float score = 1.0f;                  // BlazeFace: the sigmoid score in (0, 1); Haar: 1
  std::vector<cv::Point2f> keypoints;  // BlazeFace: 6 points (BlazeFaceKeypoint order); Haar: empty
};

struct FaceDetectorOptions {
  DetectorKind detector = DetectorKind::kBlazeFace;

  // ---- BlazeFace
  std::string blazeface_path;  // model.json of the graph; empty = default_blazeface_path()
  // Smallest sigmoid score a face is kept with, and the IoU above which two detections are one
  // face (MediaPipe's weighted non-maximum suppression: the group's boxes and keypoints are
  // averaged with their scores as weights). Chosen on the hand-annotated photos
  // (tests/fixtures/face_annotations.json; experiments/detector/).
  float min_score = 0.65f;
  float nms_iou = 0.3f;
  // Frames whose longer side exceeds this are also scanned in overlapping tiles (a 2 x 3 grid
  // for 1920 x 1080), each letterboxed to 256 x 256 like the whole frame, so that a face of a
  // 5 x 5 video-call gallery is not shrunk below what the model finds; 0 = whole frame only.
  int tile_above = 800;
  // An image in which the whole-frame pass finds nothing scoring 0.75 or more is scanned again
  // shrunk into the middle of a square twice its side, with 3/4 of min_score, and that pass is
  // kept when it is surer: a face that fills the image (an already-cropped face) is then the size
  // the model was trained on. Costs a second pass only on such images.
  bool retry_padded = true;

  // ---- Haar
  std::string cascade_path = kDefaultCascadePath;  // an OpenCV Haar or LBP cascade XML
  // Window growth per pyramid level (OpenCV's default): coarser steps miss faces between scales.
  double scale_factor = 1.1;
  // Overlapping raw detections a face needs: 6 removes the texture false positives that
  // 4 and 5 keep (a hand, a flag); 6 to 8 give the same results on the photos.
  int min_neighbors = 6;
  // Both detectors: smallest and largest face side, in pixels of the ORIGINAL image; max 0 = no
  // limit (BlazeFace's boxes are filtered by their longer side, and keep a face of at least 0.6
  // of a small image's shorter side whatever min_face_size says: an already-cropped face).
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

  // The whole-frame scan settings VideoSession uses by default (VideoOptions::scan; its detector
  // kind and model files are always the Analyzer's). BlazeFace: as for photos, without tiles
  // (tile_above 0) or the padded retry. Haar: faces from 40 px, scanned at the scale where 40 px is the cascade's window (half size for alt2), scale
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
  // Loads the detector's model (BlazeFace's graph, or the cascade); throws DataError naming the
  // file when it is missing or malformed, std::invalid_argument for out-of-range options (with
  // the value).
  FaceDetector();  // the defaults above
  explicit FaceDetector(FaceDetectorOptions options);
  ~FaceDetector();
  FaceDetector(FaceDetector&&) noexcept;
  FaceDetector& operator=(FaceDetector&&) noexcept;

  // Every face in `image` (gray, BGR or BGRA; CV_8U; any size), with its score and keypoints,
  // boxes inside the image, sorted left to right (then top to bottom, then smaller first).
  // Empty image: invalid_argument. Thread-safe and concurrent: BlazeFace's graph is read-only;
  // OpenCV's cascade is not re-entrant, so each Haar call borrows one from a pool that loads
  // another copy of the cascade file when every copy is busy (no lock is held while scanning).
  std::vector<DetectedFace> detect_faces(const cv::Mat& image) const;
  // The same with other scan settings for this call (BlazeFace: min_score, nms_iou, tile_above,
  // retry_padded; Haar: scale_factor, min_neighbors, max_detect_side, equalize_histogram; both:
  // face sizes), on this detector's model: `scan.detector` is ignored and the model paths must be
  // empty or this detector's (else invalid_argument); out-of-range values: invalid_argument.
  std::vector<DetectedFace> detect_faces(const cv::Mat& image, const FaceDetectorOptions& scan) const;
  // Boxes alone (detect_faces()' boxes, in its order).
  std::vector<cv::Rect> detect(const cv::Mat& image) const;
  std::vector<cv::Rect> detect(const cv::Mat& image, const FaceDetectorOptions& scan) const;

  const FaceDetectorOptions& options() const { return options_; }
  DetectorKind kind() const { return options_.detector; }
  // Copies of the Haar cascade loaded so far (1, plus one per extra concurrent caller ever
  // seen); 0 for BlazeFace.
  int cascades_loaded() const;

 private:
  std::vector<DetectedFace> scan(const cv::Mat& image, const FaceDetectorOptions& o) const;
  struct State;
  struct Neural;
  FaceDetectorOptions options_;
  std::unique_ptr<State> state_;    // Haar
  std::shared_ptr<const Neural> neural_;  // BlazeFace
};

// The box of largest area (first of equals), or an empty Rect when `boxes` is empty.
cv::Rect largest_face(const std::vector<cv::Rect>& boxes);

// ---- landmarks and alignment ---------------------------------------------------------------

inline constexpr int kNumLandmarks = 68;  // iBUG 300-W order: 36-41 one eye, 42-47 the other

// Eye centres from either kind of points: 68 dlib landmarks (the mean of points 36-41 is the eye
// on the image's left, of 42-47 the one on its right) or BlazeFace's 6 keypoints (kRightEye is
// the eye on the image's left, kLeftEye the one on its right). Other counts: invalid_argument.
cv::Point2f left_eye_center(const std::vector<cv::Point2f>& landmarks);
cv::Point2f right_eye_center(const std::vector<cv::Point2f>& landmarks);

// Angle of the eye line, in degrees, in image coordinates (y down): atan2(dy, dx) from the
// left eye centre to the right one. Positive when the right eye is lower in the image. Rotating
// the image by this angle with cv::getRotationMatrix2D (positive = counter-clockwise on screen)
// about the eye midpoint makes the eye line horizontal. Throws invalid_argument unless 68
// landmarks or 6 keypoints.
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
  // Moves the crop down by this fraction of the box's height (negative: up), after the margin:
  // how a detector's box is brought to the framing a model was trained on (FER2013's).
  double offset_y = 0.0;
  bool align = false;  // rotate about the eye midpoint so the eye line is horizontal (needs eye points)
  BorderMode border = BorderMode::kReplicate;
  uint8_t border_value = 0;
};

// Prepares one face: [alignment: rotate about the eye midpoint by eye_line_angle(landmarks);
// the box centre is rotated with the image] -> crop the box grown by the margin and moved by
// offset_y (regions past
// the image border are filled per opt.border) -> grayscale (BGR weights of cv::cvtColor) ->
// BILINEAR resize (cv::INTER_LINEAR, half-pixel centres) to opt.size x opt.size.
// Output: CV_8UC1, continuous, gray levels 0..255, newly allocated.
// `landmarks` (68 dlib landmarks or BlazeFace's 6 keypoints, image coordinates) is required when
// opt.align is set and ignored otherwise. Throws std::invalid_argument (with the values) for an
// empty or non-8-bit image, an empty box, a box that does not touch the image, size < 1, margin
// < 0 or > 2, |offset_y| > 1.
cv::Mat preprocess_face(const cv::Mat& image, const cv::Rect& box, const PreprocessOptions& opt,
                        const std::vector<cv::Point2f>* landmarks = nullptr);

// ---- detector + aligner + preprocessing in one object --------------------------------------

// Where alignment finds the eyes: the detector's eye keypoints (BlazeFace; no further model), or
// dlib's 68 landmarks (about 100 MB, loaded only then; also what a Haar detector aligns with).
enum class AlignWith : uint8_t { kKeypoints, kLandmarks68 };
const char* align_with_name(AlignWith a);  // "keypoints" / "landmarks68"
AlignWith parse_align_with(const std::string& name);  // invalid_argument listing the choices

struct FacePipelineOptions {
  FaceDetectorOptions detector;
  PreprocessOptions preprocess;
  AlignWith align_with = AlignWith::kKeypoints;
  std::string landmark_model_path = kDefaultLandmarkModelPath;
  // True when aligning needs dlib's landmark model (preprocess.align, and landmarks68 chosen or a
  // detector without keypoints).
  bool needs_landmark_model() const;
};

// A model's face recipe (face_recipe.h) as pipeline options, and back. apply_face_recipe
// writes the recipe's fields over `options` (validated first: std::invalid_argument naming the
// field) and keeps the rest (model paths, border_value, retry_padded, crop size);
// to_pipeline_options applies it to FacePipelineOptions{} with crops of input_size.
// face_recipe_of reads the recipe's fields of `options` (without checking them).
void apply_face_recipe(const FaceRecipe& recipe, FacePipelineOptions& options);
FacePipelineOptions to_pipeline_options(const FaceRecipe& recipe, int input_size);
FaceRecipe face_recipe_of(const FacePipelineOptions& options);

struct PreparedFace {
  cv::Rect box;                        // detector box, input image coordinates
  float score = 1.0f;                  // the detector's (DetectedFace::score); 1 for a given box
  std::vector<cv::Point2f> keypoints;  // BlazeFace's 6 keypoints when known, else empty
  std::vector<cv::Point2f> landmarks;  // dlib's 68 points when aligned with them, else empty
  double eye_angle = 0.0;              // eye line angle in degrees; 0 when not aligned
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
  // One detected face (its keypoints align it when aligning with keypoints).
  PreparedFace prepare(const cv::Mat& image, const DetectedFace& face) const;
  // One face whose box is already known (a tracker's, a dataset's). Aligning with keypoints, the
  // detector is run on the box's neighbourhood to find the eyes (no rotation if it finds none).
  PreparedFace prepare(const cv::Mat& image, const cv::Rect& box) const;
  // The same with other crop settings (e.g. margin 0 for an image that is already a face);
  // preprocess.align must match the pipeline's (the landmark model is loaded only when aligning).
  PreparedFace prepare(const cv::Mat& image, const cv::Rect& box, const PreprocessOptions& preprocess) const;

  const FacePipelineOptions& options() const { return options_; }
  const FaceDetector& detector() const { return detector_; }
  const LandmarkAligner* aligner() const { return aligner_.get(); }  // null unless needs_landmark_model()

 private:
  PreparedFace prepare_with(const cv::Mat& image, DetectedFace face, const PreprocessOptions& preprocess,
                            bool look_for_keypoints) const;
  FacePipelineOptions options_;
  FaceDetector detector_;
  std::unique_ptr<LandmarkAligner> aligner_;
};

}  // namespace fervid
