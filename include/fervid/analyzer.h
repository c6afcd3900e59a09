// fervid::Analyzer: faces and their expressions in an image, with a model loaded once
// (design.md section 1: detect -> [align] -> crop, gray, bilinear resize -> classify).
//
//   fervid::Analyzer analyzer(fervid::default_model_path());
//   for (const auto& f : analyzer.analyze(fervid::read_image("photo.jpg")))
//     std::cout << f.label_name << " " << f.confidence << " at " << f.box << "\n";
//
// Thread safety: analyze(), analyze_boxes(), analyze_whole() and detect() are const and may be
// called from several threads at once on one Analyzer, with or without alignment, and give what
// sequential calls give (tests/vision/test_analyzer_threads.cpp). Nothing is serialised: the
// detector lends each concurrent call its own copy of the cascade (FaceDetector::detect), the
// landmark model and the network are read-only. A VideoSession (video.h) holds per-stream state
// and is not thread-safe: one per stream. Construction, moves and destruction are not
// thread-safe with respect to the same object.
#pragma once

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include <optional>
#include <string>
#include <vector>

#include "fervid/classifier.h"
#include "fervid/vision.h"

namespace fervid {

struct AnalyzerOptions {
  // Detection, alignment and crop. Unset (the default): the model file's face recipe
  // (read_face_recipe(), model_io.h) as pipeline options, so a model is served with the crop it
  // was trained on. Set: these options in full. Either way `recipe` is then written over them
  // field by field (what a user gave: `fervid predict --margin 0.2`), and preprocess.size is
  // always the model's input size.
  std::optional<FacePipelineOptions> faces;
  FaceRecipeOverrides recipe;
  ClassifierOptions classifier;
};

struct FaceExpression {
  cv::Rect box;                        // input image coordinates
  float score = 1.0f;                  // the detector's confidence that this is a face (BlazeFace); 1 for Haar
  std::vector<cv::Point2f> keypoints;  // BlazeFace's 6 keypoints (eyes, nose tip, mouth, ear tragions), else empty
  std::vector<cv::Point2f> landmarks;  // dlib's 68 points when aligning with them, else empty
  int label = -1;
  std::string label_name;
  float confidence = 0;                // probs[label]
  std::vector<float> probs;            // one per class (class_names() order)
};

class Analyzer {
 public:
  // Loads the model (ModelFileError naming the file), the face detector and, when aligning
  // needs it, the landmark model (DataError naming the file). An override out of range or
  // max_face < min_face: std::invalid_argument naming the field.
  explicit Analyzer(const std::string& model_path, AnalyzerOptions options = {});
  ~Analyzer();
  Analyzer(Analyzer&&) noexcept;
  Analyzer& operator=(Analyzer&&) noexcept;

  // Every face in `image` (gray, BGR or BGRA, 8-bit), left to right, classified in one batch.
  // No face: an empty vector. Empty or non-8-bit image: std::invalid_argument.
  std::vector<FaceExpression> analyze(const cv::Mat& image) const;
  // The same with other detection settings for this call (a server request's): the recipe's
  // per-request fields (RecipeOption::per_request: scores, overlaps, tiles, face sizes, Haar's
  // scan) are used; its other fields (detector, crop, alignment) must equal recipe()'s, else
  // std::invalid_argument naming the field: they are the model's.
  std::vector<FaceExpression> analyze(const cv::Mat& image, const FaceRecipe& request) const;
  // The faces in boxes already known (a tracker's); same order as `boxes`.
  std::vector<FaceExpression> analyze_boxes(const cv::Mat& image, const std::vector<cv::Rect>& boxes) const;
  // The whole image as one face already cropped (no detection, margin 0; aligned when the
  // Analyzer aligns): `fervid predict --whole-image`, the server's ?whole_image=1.
  FaceExpression analyze_whole(const cv::Mat& image) const;
  // Detection alone.
  std::vector<cv::Rect> detect(const cv::Mat& image) const;
  std::vector<DetectedFace> detect_faces(const cv::Mat& image) const;

  // The recipe in effect (the pipeline's options as a recipe), and the model file's own.
  const FaceRecipe& recipe() const;
  const FaceRecipe& model_recipe() const;

  const std::vector<std::string>& class_names() const;
  const Classifier& classifier() const;
  const FacePipeline& pipeline() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// {"box": {"x","y","w","h"}, "label", "confidence", "probs": {class: p}, "face_score",
// "keypoints": {"right_eye": [x, y], ...}, "landmarks": [[x, y]...]} (keypoints and landmarks
// only when present); `names` orders the probabilities.
nlohmann::json to_json(const FaceExpression& face, const std::vector<std::string>& names);

// Draws each face's box and "label 87%" on `image` (BGR, CV_8UC3; gray is converted in place),
// one colour per class, text sized to the image.
void draw_expressions(cv::Mat& image, const std::vector<FaceExpression>& faces);
// The colour (BGR) fervid draws class `label` with.
cv::Scalar expression_color(int label);

}  // namespace fervid
