// The one preprocessing function and the detector + aligner + preprocessing bundle
// (include/fervid/vision.h).
#include <opencv2/imgproc.hpp>

#include <cmath>
#include <stdexcept>

#include "fervid/vision.h"
#include "vision_internal.h"

namespace fervid {

namespace vision_internal {

cv::Mat to_gray(const cv::Mat& image, const char* who) {
  if (image.empty()) throw std::invalid_argument(std::string(who) + ": empty image");
  if (image.depth() != CV_8U || (image.channels() != 1 && image.channels() != 3 && image.channels() != 4)) {
    throw std::invalid_argument(std::string(who) + ": expected an 8-bit gray, BGR or BGRA image, got depth " +
                                std::to_string(image.depth()) + " with " + std::to_string(image.channels()) +
                                " channels");
  }
  if (image.channels() == 1) return image;
  cv::Mat gray;
  cv::cvtColor(image, gray, image.channels() == 3 ? cv::COLOR_BGR2GRAY : cv::COLOR_BGRA2GRAY);
  return gray;
}

}  // namespace vision_internal

namespace {

std::string rect_string(const cv::Rect& r) {
  return "(x " + std::to_string(r.x) + ", y " + std::to_string(r.y) + ", " + std::to_string(r.width) + " x " +
         std::to_string(r.height) + ")";
}

}  // namespace

cv::Mat preprocess_face(const cv::Mat& image, const cv::Rect& box, const PreprocessOptions& opt,
                        const std::vector<cv::Point2f>* landmarks) {
  if (opt.size < 1 || opt.size > 4096) {
    throw std::invalid_argument("preprocess_face: size must be in 1..4096, got " + std::to_string(opt.size));
  }
  if (!(opt.margin >= 0.0 && opt.margin <= 2.0)) {
    throw std::invalid_argument("preprocess_face: margin must be in [0, 2], got " +
                                std::to_string(opt.margin));
  }
  if (!(std::abs(opt.offset_y) <= 1.0)) {
    throw std::invalid_argument("preprocess_face: offset_y must be in [-1, 1], got " + std::to_string(opt.offset_y));
  }
  const cv::Mat gray = vision_internal::to_gray(image, "preprocess_face");
  const cv::Rect frame(0, 0, gray.cols, gray.rows);
  if (box.width <= 0 || box.height <= 0 || (box & frame).area() == 0) {
    throw std::invalid_argument("preprocess_face: box " + rect_string(box) + " is empty or outside the " +
                                std::to_string(gray.cols) + " x " + std::to_string(gray.rows) + " image");
  }
  if (opt.align && landmarks == nullptr) {
    throw std::invalid_argument("preprocess_face: opt.align is set but no landmarks were given");
  }
  const int border = (opt.border == BorderMode::kReplicate ? cv::BORDER_REPLICATE : cv::BORDER_CONSTANT);
  const cv::Scalar fill(opt.border_value);
  const int mx = static_cast<int>(std::lround(opt.margin * box.width));
  const int my = static_cast<int>(std::lround(opt.margin * box.height));
  const int dy = static_cast<int>(std::lround(opt.offset_y * box.height));
  const cv::Size crop_size(box.width + 2 * mx, box.height + 2 * my);

  cv::Mat region;
  if (opt.align) {
    // Rotate about the eye midpoint; the box centre turns with the face, its size stays.
    const double angle = eye_line_angle(*landmarks);
    const cv::Point2f eyes = (left_eye_center(*landmarks) + right_eye_center(*landmarks)) * 0.5f;
    cv::Mat m = cv::getRotationMatrix2D(eyes, angle, 1.0);  // CV_64F 2x3, source -> rotated
    const double cx = box.x + box.width / 2.0, cy = box.y + dy + box.height / 2.0;
    const double rcx = m.at<double>(0, 0) * cx + m.at<double>(0, 1) * cy + m.at<double>(0, 2);
    const double rcy = m.at<double>(1, 0) * cx + m.at<double>(1, 1) * cy + m.at<double>(1, 2);
    m.at<double>(0, 2) -= rcx - crop_size.width / 2.0;  // shift so the crop starts at (0, 0)
    m.at<double>(1, 2) -= rcy - crop_size.height / 2.0;
    cv::warpAffine(gray, region, m, crop_size, cv::INTER_LINEAR, border, fill);
  } else {
    const cv::Rect crop(box.x - mx, box.y + dy - my, crop_size.width, crop_size.height);
    const cv::Rect inside = crop & frame;
    if (inside == crop) {
      region = gray(crop);
    } else {
      cv::copyMakeBorder(gray(inside), region, inside.y - crop.y, crop.br().y - inside.br().y,
                         inside.x - crop.x, crop.br().x - inside.br().x, border | cv::BORDER_ISOLATED, fill);
    }
  }
  cv::Mat out;
  cv::resize(region, out, cv::Size(opt.size, opt.size), 0, 0, cv::INTER_LINEAR);
  if (!out.isContinuous() || out.data == image.data) out = out.clone();  // contract: fresh, continuous
  return out;
}

namespace {
// Default-initialised in a named object: GCC 12 warns (wrongly) about `FacePipelineOptions{}`.
FacePipelineOptions default_pipeline_options() {
  FacePipelineOptions o;
  return o;
}
}  // namespace

FacePipeline::FacePipeline() : FacePipeline(default_pipeline_options()) {}

const char* align_with_name(AlignWith a) { return a == AlignWith::kLandmarks68 ? "landmarks68" : "keypoints"; }

AlignWith parse_align_with(const std::string& name) {
  if (name == "keypoints") return AlignWith::kKeypoints;
  if (name == "landmarks68") return AlignWith::kLandmarks68;
  throw std::invalid_argument("alignment source '" + name + "' is not one of: keypoints, landmarks68");
}

bool FacePipelineOptions::needs_landmark_model() const {
  return preprocess.align && (align_with == AlignWith::kLandmarks68 || detector.detector == DetectorKind::kHaar);
}

FacePipeline::FacePipeline(FacePipelineOptions options)
    : options_(std::move(options)), detector_(options_.detector) {
  if (options_.needs_landmark_model()) aligner_ = std::make_unique<LandmarkAligner>(options_.landmark_model_path);
}

FacePipeline::~FacePipeline() = default;
FacePipeline::FacePipeline(FacePipeline&&) noexcept = default;
FacePipeline& FacePipeline::operator=(FacePipeline&&) noexcept = default;

PreparedFace FacePipeline::prepare(const cv::Mat& image, const DetectedFace& face) const {
  return prepare_with(image, face, options_.preprocess, false);
}

PreparedFace FacePipeline::prepare(const cv::Mat& image, const cv::Rect& box) const {
  return prepare(image, box, options_.preprocess);
}

PreparedFace FacePipeline::prepare(const cv::Mat& image, const cv::Rect& box,
                                   const PreprocessOptions& preprocess) const {
  DetectedFace face;
  face.box = box;
  return prepare_with(image, face, preprocess, true);
}

PreparedFace FacePipeline::prepare_with(const cv::Mat& image, DetectedFace detected, const PreprocessOptions& preprocess,
                                        bool look_for_keypoints) const {
  if (preprocess.align != options_.preprocess.align)
    throw std::invalid_argument("FacePipeline::prepare: preprocess.align must match the pipeline's");
  PreparedFace face;
  face.box = detected.box;
  face.score = detected.score;
  face.keypoints = std::move(detected.keypoints);
  if (!preprocess.align) {
    face.face = preprocess_face(image, face.box, preprocess);
    return face;
  }
  if (aligner_) {
    face.landmarks = aligner_->landmarks(image, face.box);
    face.eye_angle = eye_line_angle(face.landmarks);
    face.face = preprocess_face(image, face.box, preprocess, &face.landmarks);
    return face;
  }
  if (face.keypoints.empty() && look_for_keypoints) {
    // A box from elsewhere: find the eyes with the detector in the box's neighbourhood (the box
    // grown by half its side), taking the detection that overlaps the box most.
    const cv::Rect frame(0, 0, image.cols, image.rows);
    const int gx = face.box.width / 2, gy = face.box.height / 2;
    const cv::Rect around = cv::Rect(face.box.x - gx, face.box.y - gy, face.box.width + 2 * gx,
                                     face.box.height + 2 * gy) & frame;
    if (around.area() > 0) {
      FaceDetectorOptions local = detector_.options();
      local.tile_above = 0;
      local.min_face_size = 0;
      local.max_face_size = 0;
      double best = 0.1;
      for (auto& f : detector_.detect_faces(image(around), local)) {
        const double iou = box_iou(f.box + around.tl(), face.box);
        if (iou <= best) continue;
        best = iou;
        face.keypoints.clear();
        for (const auto& p : f.keypoints) face.keypoints.push_back(p + cv::Point2f(around.tl()));
      }
    }
  }
  if (face.keypoints.size() == static_cast<size_t>(kNumBlazeFaceKeypoints)) {
    face.eye_angle = eye_line_angle(face.keypoints);
    face.face = preprocess_face(image, face.box, preprocess, &face.keypoints);
  } else {
    PreprocessOptions level = preprocess;  // no eyes found: the crop as it is
    level.align = false;
    face.face = preprocess_face(image, face.box, level);
  }
  return face;
}

std::vector<PreparedFace> FacePipeline::run(const cv::Mat& image) const {
  // The detector sees the image in colour; crops are made from one gray copy.
  const auto detected = detector_.detect_faces(image);
  const cv::Mat gray = vision_internal::to_gray(image, "FacePipeline::run");
  std::vector<PreparedFace> faces;
  faces.reserve(detected.size());
  for (const auto& d : detected) faces.push_back(prepare(gray, d));
  return faces;
}

}  // namespace fervid
