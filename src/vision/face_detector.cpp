// Haar-cascade face detection (include/fervid/vision.h).
#include <opencv2/imgproc.hpp>
#include <opencv2/objdetect.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <tuple>

#include "fervid/vision.h"
#include "vision_internal.h"

namespace fervid {

struct FaceDetector::State {
  cv::CascadeClassifier cascade;
  std::mutex mutex;  // detectMultiScale mutates the classifier's internal buffers
};

double box_iou(const cv::Rect& a, const cv::Rect& b) {
  if (a.area() <= 0 || b.area() <= 0) return 0.0;
  const double inter = (a & b).area();
  return inter / (static_cast<double>(a.area()) + static_cast<double>(b.area()) - inter);
}

cv::Rect largest_face(const std::vector<cv::Rect>& boxes) {
  cv::Rect best;
  for (const auto& b : boxes) {
    if (b.area() > best.area()) best = b;
  }
  return best;
}

FaceDetector::FaceDetector() : FaceDetector(FaceDetectorOptions{}) {}

FaceDetector::FaceDetector(FaceDetectorOptions options)
    : options_(std::move(options)), state_(std::make_unique<State>()) {
  if (!(options_.scale_factor > 1.0 && options_.scale_factor <= 2.0)) {
    throw std::invalid_argument("FaceDetector: scale_factor must be in (1, 2], got " +
                                std::to_string(options_.scale_factor));
  }
  if (options_.min_neighbors < 0) {
    throw std::invalid_argument("FaceDetector: min_neighbors must be >= 0, got " +
                                std::to_string(options_.min_neighbors));
  }
  if (options_.min_face_size < 0 || options_.max_face_size < 0 ||
      (options_.max_face_size > 0 && options_.max_face_size < options_.min_face_size)) {
    throw std::invalid_argument("FaceDetector: need 0 <= min_face_size <= max_face_size (0 = none), got " +
                                std::to_string(options_.min_face_size) + " and " +
                                std::to_string(options_.max_face_size));
  }
  if (options_.max_detect_side < 0 || (options_.max_detect_side > 0 && options_.max_detect_side < 48)) {
    throw std::invalid_argument("FaceDetector: max_detect_side must be 0 (full size) or >= 48, got " +
                                std::to_string(options_.max_detect_side));
  }
  const auto& path = options_.cascade_path;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(std::filesystem::u8path(path), ec)) {
    throw DataError(
        path +
        ": face cascade file not found (FaceDetectorOptions::cascade_path; Debian: apt install opencv-data)");
  }
  bool loaded = false;
  try {
    loaded = state_->cascade.load(path);
  } catch (const cv::Exception& e) {
    throw DataError(path + ": not a readable OpenCV cascade: " + e.what());
  }
  if (!loaded || state_->cascade.empty())
    throw DataError(path + ": not an OpenCV cascade classifier (load failed)");
}

FaceDetector::~FaceDetector() = default;
FaceDetector::FaceDetector(FaceDetector&&) noexcept = default;
FaceDetector& FaceDetector::operator=(FaceDetector&&) noexcept = default;

std::vector<cv::Rect> FaceDetector::detect(const cv::Mat& image) const {
  if (!state_) throw std::logic_error("FaceDetector::detect: moved-from detector");
  cv::Mat gray = vision_internal::to_gray(image, "FaceDetector::detect");
  // Downscale for speed; sizes given in original pixels are converted to the scanned copy.
  double scale = 1.0;
  const int longer = std::max(gray.cols, gray.rows);
  if (options_.max_detect_side > 0 && longer > options_.max_detect_side) {
    scale = static_cast<double>(options_.max_detect_side) / longer;
    cv::Mat small;
    cv::resize(gray, small, cv::Size(), scale, scale, cv::INTER_AREA);  // area: no aliasing when shrinking
    gray = small;
  }
  if (options_.equalize_histogram) {
    cv::Mat eq;
    cv::equalizeHist(gray, eq);
    gray = eq;
  }
  const int min_side = static_cast<int>(std::lround(options_.min_face_size * scale));
  const int max_side = static_cast<int>(std::lround(options_.max_face_size * scale));
  std::vector<cv::Rect> found;
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->cascade.detectMultiScale(gray, found, options_.scale_factor, options_.min_neighbors, 0,
                                     cv::Size(min_side, min_side), cv::Size(max_side, max_side));
  }
  const cv::Rect frame(0, 0, image.cols, image.rows);
  std::vector<cv::Rect> boxes;
  boxes.reserve(found.size());
  for (const auto& r : found) {
    const auto x0 = static_cast<int>(std::lround(r.x / scale));
    const auto y0 = static_cast<int>(std::lround(r.y / scale));
    const auto x1 = static_cast<int>(std::lround((r.x + r.width) / scale));
    const auto y1 = static_cast<int>(std::lround((r.y + r.height) / scale));
    const cv::Rect box = cv::Rect(x0, y0, x1 - x0, y1 - y0) & frame;
    if (box.area() > 0) boxes.push_back(box);
  }
  std::sort(boxes.begin(), boxes.end(), [](const cv::Rect& a, const cv::Rect& b) {
    return std::make_tuple(a.x, a.y, a.width, a.height) < std::make_tuple(b.x, b.y, b.width, b.height);
  });
  return boxes;
}

}  // namespace fervid
