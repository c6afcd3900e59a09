// The flags every command that recognises faces shares (predict, video, serve): which model,
// and the face-recipe flags (recipe_flags.h), which override the model's recipe field by field.
// OpenCV part of the CLI.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "fervid/analyzer.h"
#include "fervid/model_io.h"
#include "recipe_flags.h"

namespace fervid::cli {

struct AnalyzerFlags {
  std::string model;  // "" = default_model_path()
  bool flip = false;
  RecipeFlags recipe;
  AnalyzerOptions options;

  void add_to(CLI::App* cmd) {
    auto* g = "Recognition";
    cmd->add_option("--model", model, "Model file (default: the shipped model, see `fervid info --model`)")->group(g);
    cmd->add_flag("--flip", flip, "Average each face's prediction with its mirror image (2x the work)")->group(g);
    recipe.add_to(cmd, "Faces", [](const RecipeOption&) { return std::string("the model's recipe"); });
  }

  std::string model_path() const { return model.empty() ? default_model_path() : model; }

  // The model's recipe with the flags given (errors name the flags).
  FaceRecipe face_recipe() const { return recipe.given().apply(read_face_recipe(model_path())); }

  // `extra` is written over the flags (predict --whole-image: margin 0).
  Analyzer make(const FaceRecipeOverrides& extra = {}) const {
    auto o = options;
    face_recipe();  // the flags checked together, named as flags, before the model loads
    o.recipe = recipe.given();
    o.recipe.merge(extra);
    o.classifier.flip_average = flip;
    return Analyzer(model_path(), o);
  }
};

}  // namespace fervid::cli
