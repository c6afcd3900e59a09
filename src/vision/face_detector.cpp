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

#include "blazeface.h"
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

const char* detector_kind_name(DetectorKind kind) { return kind == DetectorKind::kHaar ? "haar" : "blazeface"; }

DetectorKind parse_detector_kind(const std::string& name) {
  if (name == "blazeface") return DetectorKind::kBlazeFace;
  if (name == "haar") return DetectorKind::kHaar;
  throw std::invalid_argument("face detector '" + name + "' is not one of: blazeface, haar");
}

struct FaceDetector::Neural {
  explicit Neural(const std::string& path) : model(path) {}
  vision_internal::BlazeFaceModel model;
};

void FaceDetectorOptions::validate() const {
  const FaceDetectorOptions& o = *this;
  if (!(o.min_score > 0.0f && o.min_score < 1.0f)) {
    throw std::invalid_argument("FaceDetector: min_score must be in (0, 1), got " + std::to_string(o.min_score));
  }
  if (!(o.nms_iou > 0.0f && o.nms_iou <= 1.0f)) {
    throw std::invalid_argument("FaceDetector: nms_iou must be in (0, 1], got " + std::to_string(o.nms_iou));
  }
  if (o.tile_above < 0 || (o.tile_above > 0 && o.tile_above < 256)) {
    throw std::invalid_argument("FaceDetector: tile_above must be 0 (no tiles) or >= 256, got " +
                                std::to_string(o.tile_above));
  }
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
  o.tile_above = 0;
  o.retry_padded = false;
  o.scale_factor = 1.2;
  o.min_neighbors = 2;
  o.min_face_size = 40;
  o.scale_to_min_face = true;
  return o;
}

FaceDetector::FaceDetector(FaceDetectorOptions options) : options_(std::move(options)) {
  options_.validate();
  if (options_.detector == DetectorKind::kBlazeFace) {
    if (options_.blazeface_path.empty()) {
      try {
        options_.blazeface_path = default_blazeface_path();
      } catch (const std::runtime_error& e) {
        throw DataError(std::string("BlazeFace face detector: ") + e.what());
      }
    }
    neural_ = std::make_shared<const Neural>(options_.blazeface_path);
    return;
  }
  state_ = std::make_unique<State>();
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

std::vector<DetectedFace> FaceDetector::detect_faces(const cv::Mat& image) const { return scan(image, options_); }

std::vector<DetectedFace> FaceDetector::detect_faces(const cv::Mat& image, const FaceDetectorOptions& scan_options) const {
  if (options_.detector == DetectorKind::kHaar && !scan_options.cascade_path.empty() &&
      scan_options.cascade_path != options_.cascade_path) {
    throw std::invalid_argument("FaceDetector::detect: scan options name the cascade " + scan_options.cascade_path +
                                ", this detector holds " + options_.cascade_path + " (leave cascade_path empty)");
  }
  if (options_.detector == DetectorKind::kBlazeFace && !scan_options.blazeface_path.empty() &&
      scan_options.blazeface_path != options_.blazeface_path) {
    throw std::invalid_argument("FaceDetector::detect: scan options name the BlazeFace model " +
                                scan_options.blazeface_path + ", this detector holds " + options_.blazeface_path +
                                " (leave blazeface_path empty)");
  }
  scan_options.validate();
  return scan(image, scan_options);
}

namespace {
std::vector<cv::Rect> boxes_of(const std::vector<DetectedFace>& faces) {
  std::vector<cv::Rect> boxes;
  boxes.reserve(faces.size());
  for (const auto& f : faces) boxes.push_back(f.box);
  return boxes;
}
}  // namespace

std::vector<cv::Rect> FaceDetector::detect(const cv::Mat& image) const { return boxes_of(detect_faces(image)); }

std::vector<cv::Rect> FaceDetector::detect(const cv::Mat& image, const FaceDetectorOptions& scan) const {
  return boxes_of(detect_faces(image, scan));
}

std::vector<DetectedFace> FaceDetector::scan(const cv::Mat& image, const FaceDetectorOptions& o) const {
  if (neural_) return neural_->model.detect(image, o);
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
  std::vector<DetectedFace> faces(boxes.size());
  for (size_t i = 0; i < boxes.size(); ++i) faces[i].box = boxes[i];
  return faces;
}


int FaceDetector::cascades_loaded() const {
  if (!state_) return 0;
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->loaded;
}

}  // namespace fervid
