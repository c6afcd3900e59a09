// BlazeFace internals shared by the detector (face_detector.cpp) and the tests; not installed.
#pragma once

#include <opencv2/core.hpp>

#include <array>
#include <string>
#include <vector>

#include "fervid/tfjs_graph.h"
#include "fervid/vision.h"

namespace fervid::vision_internal {

// The 896 anchor centres of the back model, in [0, 1] of the input, in output order.
std::vector<cv::Point2f> blazeface_anchors();

// One anchor's decoded detection, in input pixels (0..256).
struct BlazeFaceCandidate {
  int anchor = -1;
  float score = 0;  // sigmoid of the clipped logit
  double x0 = 0, y0 = 0, x1 = 0, y1 = 0;
  std::array<cv::Point2f, kNumBlazeFaceKeypoints> keypoints{};
};

// Every anchor whose score reaches min_score: `scores` 896 logits, `regressors` 896 x 16
// (x, y, w, h, then 6 keypoints x, y; offsets in input pixels from the anchor centre).
std::vector<BlazeFaceCandidate> decode_blazeface(const float* scores, const float* regressors,
                                                 const std::vector<cv::Point2f>& anchors, float min_score);

// A region of the image mapped onto the model's square input: input pixel (u, v) shows image
// point (region.x + (u - pad_x) / scale, region.y + (v - pad_y) / scale).
struct BlazeFaceView {
  cv::Rect2d region;  // in image pixels; may reach past the image (filled with black)
  double scale = 1, pad_x = 0, pad_y = 0;
  // Detections touching these sides of the region are cut by a tile edge inside the image and
  // dropped (another tile or the whole-frame pass holds that face whole).
  bool inner_left = false, inner_top = false, inner_right = false, inner_bottom = false;
};

// A detection in image pixels, before non-maximum suppression.
struct BlazeFaceRaw {
  double x0, y0, x1, y1;
  float score;
  std::array<cv::Point2f, kNumBlazeFaceKeypoints> keypoints;
};

// MediaPipe's weighted non-maximum suppression over detections of one image, best score first.
std::vector<BlazeFaceRaw> weighted_nms(std::vector<BlazeFaceRaw> raw, float min_iou);

class BlazeFaceModel {
 public:
  static constexpr int kInputSize = 256;
  // Loads the graph; DataError naming the file when it is not BlazeFace's.
  explicit BlazeFaceModel(const std::string& path);
  // FaceDetector::detect_faces for BlazeFace: whole frame (+ tiles, + the padded retry).
  std::vector<DetectedFace> detect(const cv::Mat& image, const FaceDetectorOptions& o) const;
  const TfjsGraph& graph() const { return graph_; }

 private:
  std::vector<BlazeFaceRaw> run_views(const cv::Mat& rgb, const std::vector<BlazeFaceView>& views,
                                      const FaceDetectorOptions& o) const;
  TfjsGraph graph_;
  std::vector<cv::Point2f> anchors_;
};

}  // namespace fervid::vision_internal
