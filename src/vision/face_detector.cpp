// Haar-cascade face detection (include/fervid/vision.h).
#include <opencv2/imgproc.hpp>
#include <opencv2/objdetect.hpp>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <tuple>
#include <vector>

#include "fervid/vision.h"
#include "vision_internal.h"

namespace fervid {

namespace {

std::unique_ptr<cv::CascadeClassifier> load_cascade(const std::string& path) {
  auto cascade = std::make_unique<cv::CascadeClassifier>();
  bool loaded = false;
  try {
    loaded = cascade->load(path);
  } catch (const cv::Exception& e) {
    throw DataError(path + ": not a readable OpenCV cascade: " + e.what());
  }
  if (!loaded || cascade->empty()) throw DataError(path + ": not an OpenCV cascade classifier (load failed)");
  return cascade;
}

}  // namespace

// detectMultiScale mutates the classifier's internal buffers, so one cascade serves one call at a
// time. Instead of a lock around one cascade, calls borrow one from a pool that grows to the
// number of concurrent callers (each copy is loaded from the same file: ~1 MB, tens of ms once).
struct FaceDetector::State {
  std::string path;
  cv::Size window;   // the cascade's detection window (20 x 20 for alt2, 24 x 24 for the LBP ones)
  std::mutex mutex;  // guards the members below
  std::condition_variable returned;
  std::vector<std::unique_ptr<cv::CascadeClassifier>> idle;  // loaded, not in use
  int loaded = 0;
  bool can_load = true;  // false once a further load failed (the file changed): wait for one instead

  std::unique_ptr<cv::CascadeClassifier> borrow() {
    std::unique_lock<std::mutex> lock(mutex);
    if (idle.empty() && can_load) {
      ++loaded;
      lock.unlock();
      try {
        return load_cascade(path);
      } catch (const DataError&) {
        lock.lock();
        --loaded;
        can_load = false;
      }
    }
    returned.wait(lock, [&] { return !idle.empty(); });  // one is always lent out, so one comes back
    return take();
  }
  void give_back(std::unique_ptr<cv::CascadeClassifier> c) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      idle.push_back(std::move(c));
    }
    returned.notify_one();
  }

 private:
  std::unique_ptr<cv::CascadeClassifier> take() {
    auto c = std::move(idle.back());
    idle.pop_back();
    return c;
  }
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

void FaceDetectorOptions::validate() const {
  const FaceDetectorOptions& o = *this;
  if (!(o.scale_factor > 1.0 && o.scale_factor <= 2.0)) {
    throw std::invalid_argument("FaceDetector: scale_factor must be in (1, 2], got " + std::to_string(o.scale_factor));
  }
  if (o.min_neighbors < 0) {
    throw std::invalid_argument("FaceDetector: min_neighbors must be >= 0, got " + std::to_string(o.min_neighbors));
  }
  if (o.min_face_size < 0 || o.max_face_size < 0 || (o.max_face_size > 0 && o.max_face_size < o.min_face_size)) {
    throw std::invalid_argument("FaceDetector: need 0 <= min_face_size <= max_face_size (0 = none), got " +
                                std::to_string(o.min_face_size) + " and " + std::to_string(o.max_face_size));
  }
  if (o.max_detect_side < 0 || (o.max_detect_side > 0 && o.max_detect_side < 48)) {
    throw std::invalid_argument("FaceDetector: max_detect_side must be 0 (full size) or >= 48, got " +
                                std::to_string(o.max_detect_side));
  }
}


FaceDetectorOptions FaceDetectorOptions::video() {
  FaceDetectorOptions o;
  o.cascade_path.clear();  // the detector's own
  o.scale_factor = 1.2;
  o.min_neighbors = 2;
  o.min_face_size = 40;
  o.scale_to_min_face = true;
  return o;
}

FaceDetector::FaceDetector(FaceDetectorOptions options)
    : options_(std::move(options)), state_(std::make_unique<State>()) {
  options_.validate();
  const auto& path = options_.cascade_path;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(std::filesystem::u8path(path), ec)) {
    throw DataError(
        path +
        ": face cascade file not found (FaceDetectorOptions::cascade_path; Debian: apt install opencv-data)");
  }
  state_->path = path;
  state_->idle.push_back(load_cascade(path));
  state_->window = state_->idle.back()->getOriginalWindowSize();
  state_->loaded = 1;
}

FaceDetector::~FaceDetector() = default;
FaceDetector::FaceDetector(FaceDetector&&) noexcept = default;
FaceDetector& FaceDetector::operator=(FaceDetector&&) noexcept = default;

std::vector<cv::Rect> FaceDetector::detect(const cv::Mat& image) const { return scan(image, options_); }

std::vector<cv::Rect> FaceDetector::detect(const cv::Mat& image, const FaceDetectorOptions& scan_options) const {
  if (!scan_options.cascade_path.empty() && scan_options.cascade_path != options_.cascade_path) {
    throw std::invalid_argument("FaceDetector::detect: scan options name the cascade " + scan_options.cascade_path +
                                ", this detector holds " + options_.cascade_path + " (leave cascade_path empty)");
  }
  scan_options.validate();
  return scan(image, scan_options);
}

std::vector<cv::Rect> FaceDetector::scan(const cv::Mat& image, const FaceDetectorOptions& o) const {
  if (!state_) throw std::logic_error("FaceDetector::detect: moved-from detector");
  cv::Mat gray = vision_internal::to_gray(image, "FaceDetector::detect");
  // Downscale for speed; sizes given in original pixels are converted to the scanned copy.
  double scale = 1.0;
  const int longer = std::max(gray.cols, gray.rows);
  if (o.max_detect_side > 0 && longer > o.max_detect_side) scale = static_cast<double>(o.max_detect_side) / longer;
  const int window = std::max(state_->window.width, state_->window.height);
  if (o.scale_to_min_face && window > 0 && o.min_face_size > window)
    scale = std::min(scale, static_cast<double>(window) / o.min_face_size);
  if (scale < 1.0) {
    cv::Mat small;
    cv::resize(gray, small, cv::Size(), scale, scale, cv::INTER_AREA);  // area: no aliasing when shrinking
    gray = small;
  }
  if (o.equalize_histogram) {
    cv::Mat eq;
    cv::equalizeHist(gray, eq);
    gray = eq;
  }
  const int min_side = static_cast<int>(std::lround(o.min_face_size * scale));
  const int max_side = static_cast<int>(std::lround(o.max_face_size * scale));
  // Borrow a cascade (another is loaded when every one is busy); give it back afterwards.
  std::unique_ptr<cv::CascadeClassifier> cascade = state_->borrow();
  std::vector<cv::Rect> found;
  try {
    cascade->detectMultiScale(gray, found, o.scale_factor, o.min_neighbors, 0, cv::Size(min_side, min_side),
                              cv::Size(max_side, max_side));
  } catch (...) {
    state_->give_back(std::move(cascade));
    throw;
  }
  state_->give_back(std::move(cascade));
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

int FaceDetector::cascades_loaded() const {
  if (!state_) return 0;
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->loaded;
}

}  // namespace fervid
