// dlib's 68-point shape predictor and the eye-line angle (include/fervid/vision.h).
#include <dlib/image_processing/shape_predictor.h>
#include <dlib/opencv/cv_image.h>
#include <dlib/serialize.h>

#include <cmath>
#include <filesystem>
#include <stdexcept>

#include "fervid/vision.h"
#include "vision_internal.h"

namespace fervid {

namespace {

cv::Point2f mean_of(const std::vector<cv::Point2f>& pts, size_t first, size_t last) {
  cv::Point2f sum(0.f, 0.f);
  for (size_t i = first; i <= last; ++i) sum += pts[i];
  return sum * (1.0f / static_cast<float>(last - first + 1));
}

void check_points(const std::vector<cv::Point2f>& landmarks, const char* who) {
  if (landmarks.size() != static_cast<size_t>(kNumLandmarks) &&
      landmarks.size() != static_cast<size_t>(kNumBlazeFaceKeypoints)) {
    throw std::invalid_argument(std::string(who) + ": expected 68 landmarks or 6 BlazeFace keypoints, got " +
                                std::to_string(landmarks.size()));
  }
}

}  // namespace

cv::Point2f left_eye_center(const std::vector<cv::Point2f>& landmarks) {
  check_points(landmarks, "left_eye_center");
  return landmarks.size() == kNumBlazeFaceKeypoints ? landmarks[kRightEye] : mean_of(landmarks, 36, 41);
}

cv::Point2f right_eye_center(const std::vector<cv::Point2f>& landmarks) {
  check_points(landmarks, "right_eye_center");
  return landmarks.size() == kNumBlazeFaceKeypoints ? landmarks[kLeftEye] : mean_of(landmarks, 42, 47);
}

double eye_line_angle(const std::vector<cv::Point2f>& landmarks) {
  const cv::Point2f d = right_eye_center(landmarks) - left_eye_center(landmarks);
  return std::atan2(static_cast<double>(d.y), static_cast<double>(d.x)) * 180.0 / CV_PI;
}

struct LandmarkAligner::Model {
  dlib::shape_predictor predictor;
};

LandmarkAligner::LandmarkAligner(const std::string& model_path) : model_(std::make_unique<Model>()) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(std::filesystem::u8path(model_path), ec)) {
    throw DataError(model_path +
                    ": landmark model not found (dlib's shape_predictor_68_face_landmarks.dat; "
                    "Debian: apt install libdlib-data)");
  }
  try {
    dlib::deserialize(model_path) >> model_->predictor;
  } catch (const std::exception& e) {
    throw DataError(model_path + ": not a dlib shape predictor: " + e.what());
  }
  if (model_->predictor.num_parts() != static_cast<unsigned long>(kNumLandmarks)) {
    throw DataError(model_path + ": shape predictor has " + std::to_string(model_->predictor.num_parts()) +
                    " points, expected 68");
  }
}

LandmarkAligner::~LandmarkAligner() = default;
LandmarkAligner::LandmarkAligner(LandmarkAligner&&) noexcept = default;
LandmarkAligner& LandmarkAligner::operator=(LandmarkAligner&&) noexcept = default;

std::vector<cv::Point2f> LandmarkAligner::landmarks(const cv::Mat& image, const cv::Rect& box) const {
  if (!model_) throw std::logic_error("LandmarkAligner::landmarks: moved-from aligner");
  const cv::Mat gray = vision_internal::to_gray(image, "LandmarkAligner::landmarks");
  if (box.width <= 0 || box.height <= 0) {
    throw std::invalid_argument("LandmarkAligner::landmarks: empty box " + std::to_string(box.width) + " x " +
                                std::to_string(box.height));
  }
  const dlib::cv_image<unsigned char> img(gray);
  // dlib rectangles are inclusive of their right and bottom edges.
  const dlib::rectangle rect(box.x, box.y, box.x + box.width - 1, box.y + box.height - 1);
  const dlib::full_object_detection shape = model_->predictor(img, rect);
  std::vector<cv::Point2f> out;
  out.reserve(shape.num_parts());
  for (unsigned long i = 0; i < shape.num_parts(); ++i) {
    out.emplace_back(static_cast<float>(shape.part(i).x()), static_cast<float>(shape.part(i).y()));
  }
  return out;
}

}  // namespace fervid
