// BlazeFace face detection (include/fervid/vision.h): MediaPipe's "back camera" model run from
// its TF.js graph (src/nn/tfjs_graph.cpp), decoded as MediaPipe's face_detection_back graph
// does: SSD anchors (4 layers, strides 16, 32, 32, 32, 2 anchors per layer and cell, fixed size),
// sigmoid scores, box and keypoint offsets in input pixels (x, y, w, h order), then weighted
// non-maximum suppression.
#include "blazeface.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <tuple>

#include "fervid/classifier.h"
#include "fervid/dataset.h"
#include "fervid/model_io.h"

namespace fervid {

std::string default_blazeface_path() { return shipped_model_path("third_party/blazeface/blazeface.json"); }

namespace vision_internal {

namespace {

constexpr int kInput = BlazeFaceModel::kInputSize;
// The padded retry runs when no detection of the whole-frame pass scores this much.
constexpr float kRetryBelow = 0.75f;

BlazeFaceView letterbox(const cv::Rect2d& region) {
  BlazeFaceView v;
  v.region = region;
  v.scale = kInput / std::max(region.width, region.height);
  v.pad_x = (kInput - region.width * v.scale) / 2;
  v.pad_y = (kInput - region.height * v.scale) / 2;
  return v;
}

// Writes the view's pixels, RGB scaled to [-1, 1] as the model expects (x / 127.5 - 1), into
// `dst` (256 x 256 x 3 floats, NHWC).
void fill_input(const cv::Mat& rgb, const BlazeFaceView& v, float* dst) {
  cv::Mat canvas(kInput, kInput, CV_32FC3, dst);
  canvas.setTo(cv::Scalar::all(-1.0));
  // Image part of the region, and where it lands in the input.
  const cv::Rect2d frame(0, 0, rgb.cols, rgb.rows);
  const cv::Rect2d inside = v.region & frame;
  if (inside.width <= 0 || inside.height <= 0) return;
  const cv::Rect src(static_cast<int>(std::floor(inside.x)), static_cast<int>(std::floor(inside.y)),
                     static_cast<int>(std::ceil(inside.x + inside.width) - std::floor(inside.x)),
                     static_cast<int>(std::ceil(inside.y + inside.height) - std::floor(inside.y)));
  const double u0 = v.pad_x + (src.x - v.region.x) * v.scale, v0 = v.pad_y + (src.y - v.region.y) * v.scale;
  const int ux = std::clamp(static_cast<int>(std::lround(u0)), 0, kInput - 1);
  const int vy = std::clamp(static_cast<int>(std::lround(v0)), 0, kInput - 1);
  const int w = std::clamp(static_cast<int>(std::lround(src.width * v.scale)), 1, kInput - ux);
  const int h = std::clamp(static_cast<int>(std::lround(src.height * v.scale)), 1, kInput - vy);
  cv::Mat resized;
  // Area averaging when shrinking (no aliasing in a 1080p frame), bilinear when enlarging.
  const int interp = (w < src.width || h < src.height) ? cv::INTER_AREA : cv::INTER_LINEAR;
  cv::resize(rgb(src), resized, cv::Size(w, h), 0, 0, interp);
  resized.convertTo(canvas(cv::Rect(ux, vy, w, h)), CV_32FC3, 1.0 / 127.5, -1.0);
}

double raw_iou(const BlazeFaceRaw& a, const BlazeFaceRaw& b) {
  const double iw = std::min(a.x1, b.x1) - std::max(a.x0, b.x0);
  const double ih = std::min(a.y1, b.y1) - std::max(a.y0, b.y0);
  if (iw <= 0 || ih <= 0) return 0.0;
  const double inter = iw * ih;
  const double ua = (a.x1 - a.x0) * (a.y1 - a.y0) + (b.x1 - b.x0) * (b.y1 - b.y0) - inter;
  return ua > 0 ? inter / ua : 0.0;
}

}  // namespace

std::vector<BlazeFaceRaw> weighted_nms(std::vector<BlazeFaceRaw> raw, float min_iou) {
  // MediaPipe's WEIGHTED algorithm: the best remaining detection and every other one overlapping
  // it by more than min_iou become one face whose box and keypoints are their score-weighted
  // mean, with the best one's score.
  std::stable_sort(raw.begin(), raw.end(), [](const BlazeFaceRaw& a, const BlazeFaceRaw& b) { return a.score > b.score; });
  std::vector<BlazeFaceRaw> out;
  std::vector<bool> used(raw.size(), false);
  for (size_t i = 0; i < raw.size(); ++i) {
    if (used[i]) continue;
    double wsum = 0, x0 = 0, y0 = 0, x1 = 0, y1 = 0;
    std::array<cv::Point2d, kNumBlazeFaceKeypoints> kp{};
    for (size_t j = i; j < raw.size(); ++j) {
      if (used[j] || (j != i && raw_iou(raw[i], raw[j]) <= min_iou)) continue;
      used[j] = true;
      const double w = raw[j].score;
      wsum += w;
      x0 += w * raw[j].x0;
      y0 += w * raw[j].y0;
      x1 += w * raw[j].x1;
      y1 += w * raw[j].y1;
      for (size_t k = 0; k < kp.size(); ++k) kp[k] += w * cv::Point2d(raw[j].keypoints[k]);
    }
    BlazeFaceRaw m{x0 / wsum, y0 / wsum, x1 / wsum, y1 / wsum, raw[i].score, {}};
    for (size_t k = 0; k < kp.size(); ++k)
      m.keypoints[k] = {static_cast<float>(kp[k].x / wsum), static_cast<float>(kp[k].y / wsum)};
    out.push_back(m);
  }
  return out;
}

std::vector<cv::Point2f> blazeface_anchors() {
  // SsdAnchorsCalculator with num_layers 4, strides {16, 32, 32, 32}, input 256, anchor_offset
  // 0.5, aspect_ratios {1.0}, interpolated_scale_aspect_ratio 1.0, fixed_anchor_size: layers of
  // equal stride share one grid; each layer puts 2 anchors (the ratio-1 one and the
  // interpolated one) in every cell, so a 16 x 16 grid with 2 per cell, then 8 x 8 with 6.
  const int strides[] = {16, 32, 32, 32};
  std::vector<cv::Point2f> anchors;
  size_t layer = 0;
  while (layer < 4) {
    size_t last = layer;
    while (last + 1 < 4 && strides[last + 1] == strides[layer]) ++last;
    const int per_cell = 2 * static_cast<int>(last - layer + 1);
    const int grid = (kInput + strides[layer] - 1) / strides[layer];
    for (int y = 0; y < grid; ++y)
      for (int x = 0; x < grid; ++x)
        for (int k = 0; k < per_cell; ++k) anchors.emplace_back((x + 0.5f) / grid, (y + 0.5f) / grid);
    layer = last + 1;
  }
  return anchors;
}

std::vector<BlazeFaceCandidate> decode_blazeface(const float* scores, const float* regressors,
                                                 const std::vector<cv::Point2f>& anchors, float min_score) {
  std::vector<BlazeFaceCandidate> out;
  // score = sigmoid(clip(logit, -100, 100)) >= min_score  <=>  logit >= logit(min_score)
  const double min_logit = std::log(min_score / (1.0 - min_score));
  for (size_t a = 0; a < anchors.size(); ++a) {
    const double logit = std::clamp(static_cast<double>(scores[a]), -100.0, 100.0);
    if (logit < min_logit) continue;
    const float* r = regressors + a * 16;
    BlazeFaceCandidate c;
    c.anchor = static_cast<int>(a);
    c.score = static_cast<float>(1.0 / (1.0 + std::exp(-logit)));
    // Offsets are in input pixels; anchors are unit-sized, centred in their cell.
    const double cx = r[0] + anchors[a].x * kInput, cy = r[1] + anchors[a].y * kInput;
    c.x0 = cx - r[2] / 2.0;
    c.y0 = cy - r[3] / 2.0;
    c.x1 = cx + r[2] / 2.0;
    c.y1 = cy + r[3] / 2.0;
    for (int k = 0; k < kNumBlazeFaceKeypoints; ++k)
      c.keypoints[static_cast<size_t>(k)] = {static_cast<float>(r[4 + 2 * k] + anchors[a].x * kInput),
                                             static_cast<float>(r[5 + 2 * k] + anchors[a].y * kInput)};
    out.push_back(c);
  }
  return out;
}

BlazeFaceModel::BlazeFaceModel(const std::string& path) : graph_([&] {
  try {
    return TfjsGraph(path);
  } catch (const ModelFileError& e) {
    throw DataError(std::string("BlazeFace face detector: ") + e.what());
  }
}()), anchors_(blazeface_anchors()) {
  const auto& shape = graph_.input_shape();
  if (shape.size() != 4 || shape[1] != kInput || shape[2] != kInput || shape[3] != 3)
    throw DataError(path + ": not the BlazeFace back model (input must be [1, 256, 256, 3], is " +
                    std::to_string(shape.size()) + "-d)");
  // Outputs sorted by name: scores of the 16 x 16 grid (512 x 1), of the 8 x 8 grid (384 x 1),
  // then their regressors (512 x 16, 384 x 16); checked by shape below at the first run.
  if (graph_.output_names().size() != 4)
    throw DataError(path + ": BlazeFace must have 4 outputs, has " + std::to_string(graph_.output_names().size()));
}

std::vector<DetectedFace> BlazeFaceModel::detect(const cv::Mat& image, const FaceDetectorOptions& o) const {
  if (image.empty()) throw std::invalid_argument("FaceDetector::detect: empty image");
  if (image.depth() != CV_8U || (image.channels() != 1 && image.channels() != 3 && image.channels() != 4))
    throw std::invalid_argument("FaceDetector::detect: expected an 8-bit gray, BGR or BGRA image, got depth " +
                                std::to_string(image.depth()) + " with " + std::to_string(image.channels()) +
                                " channels");
  cv::Mat rgb;
  const int code = image.channels() == 1 ? cv::COLOR_GRAY2RGB : image.channels() == 3 ? cv::COLOR_BGR2RGB
                                                                                        : cv::COLOR_BGRA2RGB;
  cv::cvtColor(image, rgb, code);
  const double W = image.cols, H = image.rows;

  std::vector<BlazeFaceView> views = {letterbox(cv::Rect2d(0, 0, W, H))};
  if (o.tile_above > 0 && std::max(W, H) > o.tile_above) {
    const int nx = static_cast<int>(std::ceil(W / o.tile_above)), ny = static_cast<int>(std::ceil(H / o.tile_above));
    const double cw = W / nx, ch = H / ny, overlap = 0.25 * std::min(cw, ch);
    for (int j = 0; j < ny; ++j)
      for (int i = 0; i < nx; ++i) {
        const double x0 = std::max(0.0, i * cw - overlap), y0 = std::max(0.0, j * ch - overlap);
        const double x1 = std::min(W, (i + 1) * cw + overlap), y1 = std::min(H, (j + 1) * ch + overlap);
        BlazeFaceView v = letterbox(cv::Rect2d(x0, y0, x1 - x0, y1 - y0));
        v.inner_left = i > 0;
        v.inner_top = j > 0;
        v.inner_right = i + 1 < nx;
        v.inner_bottom = j + 1 < ny;
        views.push_back(v);
      }
  }
  std::vector<BlazeFaceRaw> raw = run_views(rgb, views, o);
  auto best_score = [](const std::vector<BlazeFaceRaw>& r) {
    float best = 0;
    for (const auto& d : r) best = std::max(best, d.score);
    return best;
  };
  if (o.retry_padded && best_score(raw) < kRetryBelow) {
    // An image that is all face gives nothing, or pieces of the face with low scores: shrink it
    // into the middle of a square twice its side, and keep that pass if it is surer.
    // That pass accepts 3/4 of min_score: in an image that is one face, the face is its subject
    // (on the xds crops: 95.2% -> 98.9% of muxspace's images with a face found).
    const double side = 2 * std::max(W, H);
    FaceDetectorOptions r = o;
    r.min_score = 0.75f * o.min_score;
    auto padded = run_views(rgb, {letterbox(cv::Rect2d((W - side) / 2, (H - side) / 2, side, side))}, r);
    if (best_score(padded) > best_score(raw)) raw = std::move(padded);
  }

  std::vector<DetectedFace> faces;
  const cv::Rect frame(0, 0, image.cols, image.rows);
  // A face that fills a small image (a 40 x 48 crop) is kept whatever min_face_size says.
  const double min_side = std::min<double>(o.min_face_size, 0.6 * std::min(W, H));
  std::vector<BlazeFaceRaw> kept;
  for (auto& f : weighted_nms(std::move(raw), o.nms_iou)) {
    const double side = std::max(f.x1 - f.x0, f.y1 - f.y0);
    if (side < min_side || (o.max_face_size > 0 && side > o.max_face_size)) continue;
    // Faces do not nest: a detection lying mostly (over half its area) inside a surer one is a
    // piece of that face (an eye region, a face inside a face that fills the image).
    bool nested = false;
    for (const auto& k : kept) {
      const double iw = std::min(f.x1, k.x1) - std::max(f.x0, k.x0), ih = std::min(f.y1, k.y1) - std::max(f.y0, k.y0);
      nested = nested || (iw > 0 && ih > 0 && iw * ih > 0.5 * (f.x1 - f.x0) * (f.y1 - f.y0));
    }
    if (nested) continue;
    kept.push_back(f);
    DetectedFace d;
    const int ix0 = static_cast<int>(std::lround(f.x0)), iy0 = static_cast<int>(std::lround(f.y0));
    d.box = cv::Rect(ix0, iy0, static_cast<int>(std::lround(f.x1)) - ix0, static_cast<int>(std::lround(f.y1)) - iy0) & frame;
    if (d.box.area() <= 0) continue;
    d.score = f.score;
    d.keypoints.assign(f.keypoints.begin(), f.keypoints.end());
    faces.push_back(std::move(d));
  }
  std::sort(faces.begin(), faces.end(), [](const DetectedFace& a, const DetectedFace& b) {
    return std::make_tuple(a.box.x, a.box.y, a.box.width, a.box.height) <
           std::make_tuple(b.box.x, b.box.y, b.box.width, b.box.height);
  });
  return faces;
}

std::vector<BlazeFaceRaw> BlazeFaceModel::run_views(const cv::Mat& rgb, const std::vector<BlazeFaceView>& views,
                                           const FaceDetectorOptions& o) const {
  auto input = torch::empty({static_cast<int64_t>(views.size()), kInput, kInput, 3});
  for (size_t b = 0; b < views.size(); ++b)
    fill_input(rgb, views[b], input.data_ptr<float>() + b * kInput * kInput * 3);
  const auto out = graph_.run(input);
  // By shape: [B, 512, 1], [B, 384, 1], [B, 512, 16], [B, 384, 16].
  const int64_t B = static_cast<int64_t>(views.size());
  auto check = [&](size_t k, int64_t n, int64_t c) {
    if (out[k].dim() != 3 || out[k].size(0) != B || out[k].size(1) != n || out[k].size(2) != c)
      throw DataError(graph_.path() + ": BlazeFace output " + graph_.output_names()[k] + " has an unexpected shape");
  };
  check(0, 512, 1);
  check(1, 384, 1);
  check(2, 512, 16);
  check(3, 384, 16);
  const auto scores = torch::cat({out[0], out[1]}, 1).contiguous();
  const auto regressors = torch::cat({out[2], out[3]}, 1).contiguous();
  std::vector<BlazeFaceRaw> raw;
  for (int64_t b = 0; b < B; ++b) {
    const BlazeFaceView& v = views[static_cast<size_t>(b)];
    const auto found = decode_blazeface(scores[b].data_ptr<float>(), regressors[b].data_ptr<float>(), anchors_, o.min_score);
    const double eps = 2.0 / v.scale;  // within 2 input pixels of a tile edge = touching it
    for (const auto& c : found) {
      auto to_x = [&](double u) { return v.region.x + (u - v.pad_x) / v.scale; };
      auto to_y = [&](double w) { return v.region.y + (w - v.pad_y) / v.scale; };
      BlazeFaceRaw r{to_x(c.x0), to_y(c.y0), to_x(c.x1), to_y(c.y1), c.score, {}};
      if ((v.inner_left && r.x0 <= v.region.x + eps) || (v.inner_top && r.y0 <= v.region.y + eps) ||
          (v.inner_right && r.x1 >= v.region.x + v.region.width - eps) ||
          (v.inner_bottom && r.y1 >= v.region.y + v.region.height - eps))
        continue;
      for (size_t k = 0; k < r.keypoints.size(); ++k)
        r.keypoints[k] = {static_cast<float>(to_x(c.keypoints[k].x)), static_cast<float>(to_y(c.keypoints[k].y))};
      raw.push_back(r);
    }
  }
  return raw;
}

}  // namespace vision_internal
}  // namespace fervid
