// FaceRecipe (core, face_recipe.h) <-> FacePipelineOptions (vision.h): the one place that knows
// which pipeline field each recipe field is.
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include "fervid/vision.h"

namespace fervid {

namespace {
BorderMode parse_border(const std::string& name) {
  if (name == "replicate") return BorderMode::kReplicate;
  if (name == "constant") return BorderMode::kConstant;
  throw std::invalid_argument("border '" + name + "' is not one of: replicate, constant");
}

// The shortest decimal that reads back as `f`, as a double: 0.3f gives 0.3, not 0.30000001192,
// so a recipe read from the options equals the recipe they were made from.
double decimal_of(float f) {
  char text[32];
  for (int digits = 6; digits < 9; ++digits) {
    std::snprintf(text, sizeof(text), "%.*g", digits, static_cast<double>(f));
    if (std::strtof(text, nullptr) == f) return std::strtod(text, nullptr);
  }
  std::snprintf(text, sizeof(text), "%.9g", static_cast<double>(f));
  return std::strtod(text, nullptr);
}
}  // namespace

void apply_face_recipe(const FaceRecipe& r, FacePipelineOptions& o) {
  r.validate();
  auto& d = o.detector;
  d.detector = parse_detector_kind(r.detector);
  d.min_score = static_cast<float>(r.min_score);
  d.nms_iou = static_cast<float>(r.nms_iou);
  d.tile_above = r.tile_above;
  d.min_face_size = r.min_face;
  d.max_face_size = r.max_face;
  d.min_neighbors = r.neighbors;
  d.scale_factor = r.scale_step;
  d.max_detect_side = r.detect_side;
  auto& p = o.preprocess;
  p.margin = r.margin;
  p.offset_y = r.offset_y;
  p.align = r.align;
  p.border = parse_border(r.border);
  o.align_with = parse_align_with(r.align_with);
}

FacePipelineOptions to_pipeline_options(const FaceRecipe& recipe, int input_size) {
  FacePipelineOptions o;
  o.preprocess.size = input_size;
  apply_face_recipe(recipe, o);
  return o;
}

FaceRecipe face_recipe_of(const FacePipelineOptions& o) {
  FaceRecipe r;
  const auto& d = o.detector;
  r.detector = detector_kind_name(d.detector);
  r.min_score = decimal_of(d.min_score);
  r.nms_iou = decimal_of(d.nms_iou);
  r.tile_above = d.tile_above;
  r.min_face = d.min_face_size;
  r.max_face = d.max_face_size;
  r.neighbors = d.min_neighbors;
  r.scale_step = d.scale_factor;
  r.detect_side = d.max_detect_side;
  r.margin = o.preprocess.margin;
  r.offset_y = o.preprocess.offset_y;
  r.align = o.preprocess.align;
  r.align_with = align_with_name(o.align_with);
  r.border = o.preprocess.border == BorderMode::kConstant ? "constant" : "replicate";
  return r;
}

}  // namespace fervid
