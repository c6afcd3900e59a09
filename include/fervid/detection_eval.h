// Judging a face detector against hand-annotated faces: recall and precision at an IoU
// threshold, over all faces and per tag (partial, bowed, small, frontal...), and video-call
// galleries composed from annotated photos. Used by the detector tests and bench/bench_detector.
//
// Annotations file (tests/fixtures/face_annotations.json): {"images": {"<path relative to a data
// root>": {"size": [w, h], "faces": [{"box": [x, y, w, h], "tags": ["frontal", ...]}, ...]}},
// "galleries": {"<name>": {"size": [w, h], "background": gray, "tiles": [{"src": "<path>",
// "rect": [x, y, w, h], "image_rect": [x, y, w, h]}, ...], "faces": [{"box", "tags"}, ...]}}}.
// Boxes in image pixels. scripts/compose_gallery.py writes the galleries and their faces (the
// photos' boxes mapped through each tile's letterbox) and states the rule.
#pragma once

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace fervid {

struct AnnotatedFace {
  cv::Rect box;
  std::vector<std::string> tags;
  bool has(const std::string& tag) const;
};

struct AnnotatedImage {
  std::string name;  // the key: a path relative to the data root, or a gallery's name
  cv::Size size;
  std::vector<AnnotatedFace> faces;
};

struct GalleryTile {
  std::string source;  // an image of the annotations
  cv::Rect rect;       // the tile in the canvas
  cv::Rect image;      // where the letterboxed photo lands inside it
};

struct Gallery {
  std::string name;
  cv::Size canvas;
  int background = 0;
  std::vector<GalleryTile> tiles;
  std::vector<AnnotatedFace> faces;  // the tiles' annotated faces, in canvas pixels
};

struct FaceAnnotations {
  std::vector<AnnotatedImage> images;
  std::vector<Gallery> galleries;
  const AnnotatedImage& image(const std::string& name) const;  // std::out_of_range naming it
};

// Reads the annotations; DataError naming the file and the entry when malformed.
FaceAnnotations read_face_annotations(const std::string& path);

// A gallery frame: each tile's source photo resized into its image rect (area averaging when
// shrinking, as the script's antialiased bilinear filter; bilinear when enlarging), the rest
// `background`. Returns the BGR canvas and, in `faces`, the gallery's annotated faces.
// `read` loads a source by its annotation name (e.g. from $FERVID_DATA/faces/).
cv::Mat compose_gallery(const Gallery& gallery, const FaceAnnotations& annotations,
                        const std::function<cv::Mat(const std::string&)>& read, AnnotatedImage* faces);

// Greedy one-to-one matching, highest IoU first: truth_match[i] is the detection matched to truth
// face i (or -1), detection_match[j] the truth face matched to detection j (or -1); a pair
// needs IoU >= min_iou.
struct FaceMatch {
  std::vector<int> truth_match;
  std::vector<int> detection_match;
};
FaceMatch match_faces(const std::vector<cv::Rect>& detections, const std::vector<cv::Rect>& truth, double min_iou = 0.5);

// Counts over many images, overall and per tag.
struct DetectionCounts {
  int64_t faces = 0, found = 0;            // annotated faces, and those matched
  int64_t detections = 0, correct = 0;     // detections, and those matched
  std::map<std::string, std::pair<int64_t, int64_t>> by_tag;  // tag -> (found, faces)
  double recall() const { return faces ? static_cast<double>(found) / faces : 0.0; }
  double precision() const { return detections ? static_cast<double>(correct) / detections : 1.0; }
  void add(const AnnotatedImage& truth, const std::vector<cv::Rect>& boxes_found, double min_iou = 0.5);
  nlohmann::json to_json() const;
};

}  // namespace fervid
