#include "fervid/analyzer.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cstdio>
#include <stdexcept>

#include "fervid/model_io.h"
#include "vision_internal.h"

namespace fervid {

struct Analyzer::Impl {
  Impl(const std::string& model_path, const AnalyzerOptions& o)
      : classifier(model_path, o.classifier),
        model_recipe(read_face_recipe(model_path)),
        pipeline(pipeline_options(o, model_recipe, classifier.input_size())),
        recipe(face_recipe_of(pipeline.options())) {}
  // The model's recipe (or the options given in full), the overrides over it, the model's size.
  static FacePipelineOptions pipeline_options(const AnalyzerOptions& o, const FaceRecipe& model, int size) {
    FacePipelineOptions f = o.faces ? *o.faces : to_pipeline_options(model, size);
    if (!o.recipe.empty()) apply_face_recipe(o.recipe.apply(face_recipe_of(f), recipe_field_where("Analyzer", "recipe.")), f);
    f.preprocess.size = size;
    return f;
  }
  Classifier classifier;
  FaceRecipe model_recipe;
  FacePipeline pipeline;
  FaceRecipe recipe;
};

Analyzer::Analyzer(const std::string& model_path, AnalyzerOptions options)
    : impl_(std::make_unique<Impl>(model_path, std::move(options))) {
  if (impl_->classifier.config().in_channels != 1) {
    throw std::invalid_argument(model_path + ": the Analyzer feeds gray faces; this model expects " +
                                std::to_string(impl_->classifier.config().in_channels) + " channels");
  }
}

Analyzer::~Analyzer() = default;
Analyzer::Analyzer(Analyzer&&) noexcept = default;
Analyzer& Analyzer::operator=(Analyzer&&) noexcept = default;

namespace {
std::vector<FaceExpression> classify_prepared(const Classifier& classifier, const std::vector<PreparedFace>& faces) {
  std::vector<const uint8_t*> crops;
  crops.reserve(faces.size());
  for (const auto& f : faces) crops.push_back(f.face.ptr<uint8_t>());
  const auto scores = classifier.classify(crops);
  std::vector<FaceExpression> out(faces.size());
  for (size_t i = 0; i < faces.size(); ++i) {
    auto& e = out[i];
    e.box = faces[i].box;
    e.score = faces[i].score;
    e.keypoints = faces[i].keypoints;
    e.landmarks = faces[i].landmarks;
    e.label = scores[i].label;
    e.label_name = classifier.class_names().at(static_cast<size_t>(e.label));
    e.confidence = scores[i].confidence;
    e.probs = scores[i].probs;
  }
  return out;
}
}  // namespace

std::vector<FaceExpression> Analyzer::analyze(const cv::Mat& image) const {
  return classify_prepared(impl_->classifier, impl_->pipeline.run(image));
}

std::vector<FaceExpression> Analyzer::analyze(const cv::Mat& image, const FaceRecipe& request) const {
  if (request == impl_->recipe) return analyze(image);
  for (const auto& o : face_recipe_options()) {
    if (o.per_request || o.get(request) == o.get(impl_->recipe)) continue;
    throw std::invalid_argument("Analyzer::analyze: " + o.name + " is the model's (" + o.get(impl_->recipe).dump() +
                                "), a call cannot change it (got " + o.get(request).dump() + ")");
  }
  FacePipelineOptions options = impl_->pipeline.options();
  apply_face_recipe(request, options);  // validates; keeps the model paths, so the detector's scan accepts it
  const auto detected = impl_->pipeline.detector().detect_faces(image, options.detector);
  const cv::Mat gray = vision_internal::to_gray(image, "Analyzer::analyze");
  std::vector<PreparedFace> faces;
  faces.reserve(detected.size());
  for (const auto& d : detected) faces.push_back(impl_->pipeline.prepare(gray, d));
  return classify_prepared(impl_->classifier, faces);
}

std::vector<FaceExpression> Analyzer::analyze_boxes(const cv::Mat& image, const std::vector<cv::Rect>& boxes) const {
  const cv::Mat gray = vision_internal::to_gray(image, "Analyzer::analyze_boxes");
  std::vector<PreparedFace> faces;
  faces.reserve(boxes.size());
  for (const auto& b : boxes) faces.push_back(impl_->pipeline.prepare(gray, b));
  return classify_prepared(impl_->classifier, faces);
}

FaceExpression Analyzer::analyze_whole(const cv::Mat& image) const {
  const cv::Mat gray = vision_internal::to_gray(image, "Analyzer::analyze_whole");
  PreprocessOptions whole = impl_->pipeline.options().preprocess;
  // The image is the crop: neither the recipe's margin nor its shift apply.
  whole.margin = 0;
  whole.offset_y = 0;
  const cv::Rect box(0, 0, gray.cols, gray.rows);
  return classify_prepared(impl_->classifier, {impl_->pipeline.prepare(gray, box, whole)}).front();
}

std::vector<cv::Rect> Analyzer::detect(const cv::Mat& image) const { return impl_->pipeline.detector().detect(image); }
std::vector<DetectedFace> Analyzer::detect_faces(const cv::Mat& image) const {
  return impl_->pipeline.detector().detect_faces(image);
}

const FaceRecipe& Analyzer::recipe() const { return impl_->recipe; }
const FaceRecipe& Analyzer::model_recipe() const { return impl_->model_recipe; }
const std::vector<std::string>& Analyzer::class_names() const { return impl_->classifier.class_names(); }
const Classifier& Analyzer::classifier() const { return impl_->classifier; }
const FacePipeline& Analyzer::pipeline() const { return impl_->pipeline; }

nlohmann::json to_json(const FaceExpression& f, const std::vector<std::string>& names) {
  nlohmann::json probs = nlohmann::json::object();
  for (size_t k = 0; k < f.probs.size(); ++k) probs[k < names.size() ? names[k] : std::to_string(k)] = f.probs[k];
  nlohmann::json j = {{"box", {{"x", f.box.x}, {"y", f.box.y}, {"w", f.box.width}, {"h", f.box.height}}},
                      {"label", f.label_name},
                      {"confidence", f.confidence},
                      {"probs", probs},
                      {"face_score", f.score}};
  if (f.keypoints.size() == static_cast<size_t>(kNumBlazeFaceKeypoints)) {
    static const char* kNames[] = {"right_eye", "left_eye", "nose_tip", "mouth_center", "right_ear_tragion",
                                   "left_ear_tragion"};
    auto& k = j["keypoints"] = nlohmann::json::object();
    for (size_t i = 0; i < f.keypoints.size(); ++i) k[kNames[i]] = {f.keypoints[i].x, f.keypoints[i].y};
  }
  if (!f.landmarks.empty()) {
    auto& l = j["landmarks"] = nlohmann::json::array();
    for (const auto& p : f.landmarks) l.push_back({p.x, p.y});
  }
  return j;
}

cv::Scalar expression_color(int label) {
  // angry red, disgust green, fear purple, happy yellow, sad blue, surprise orange, neutral gray
  static const cv::Scalar kColors[] = {{40, 40, 220}, {40, 160, 40}, {160, 60, 150}, {0, 210, 255},
                                       {200, 110, 30}, {0, 140, 255}, {170, 170, 170}};
  return label >= 0 && label < 7 ? kColors[label] : cv::Scalar(255, 255, 255);
}

void draw_expressions(cv::Mat& image, const std::vector<FaceExpression>& faces) {
  if (image.empty()) throw std::invalid_argument("draw_expressions: empty image");
  if (image.type() == CV_8UC1) cv::cvtColor(image, image, cv::COLOR_GRAY2BGR);
  if (image.type() == CV_8UC4) cv::cvtColor(image, image, cv::COLOR_BGRA2BGR);
  if (image.type() != CV_8UC3) throw std::invalid_argument("draw_expressions: expected an 8-bit gray, BGR or BGRA image");
  const double scale = std::clamp(std::max(image.cols, image.rows) / 900.0, 0.45, 2.0);
  const int thick = std::max(1, static_cast<int>(std::lround(2 * scale)));
  for (const auto& f : faces) {
    const auto color = expression_color(f.label);
    cv::rectangle(image, f.box, color, thick, cv::LINE_AA);
    for (const auto& p : f.landmarks) cv::circle(image, p, std::max(1, thick / 2), color, cv::FILLED, cv::LINE_AA);
    for (const auto& p : f.keypoints) cv::circle(image, p, std::max(2, thick), color, cv::FILLED, cv::LINE_AA);
    char text[64];
    std::snprintf(text, sizeof(text), "%s %.0f%%", f.label_name.c_str(), 100.0 * f.confidence);
    int base = 0;
    const auto size = cv::getTextSize(text, cv::FONT_HERSHEY_SIMPLEX, scale, thick, &base);
    cv::Point org(f.box.x, f.box.y - 6 * thick);
    if (org.y - size.height < 0) org.y = f.box.y + f.box.height + size.height + 4 * thick;  // below the box
    const cv::Rect bg(org.x - 2, org.y - size.height - 3, size.width + 4, size.height + base + 5);
    cv::rectangle(image, bg & cv::Rect(0, 0, image.cols, image.rows), color, cv::FILLED);
    cv::putText(image, text, org, cv::FONT_HERSHEY_SIMPLEX, scale, cv::Scalar(0, 0, 0), thick, cv::LINE_AA);
  }
}

}  // namespace fervid
