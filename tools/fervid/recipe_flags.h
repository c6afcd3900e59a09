// The face-recipe flags (--detector --min-score --nms-iou --tile-above --min-face --max-face
// --neighbors --scale-step --detect-side --margin --offset-y --align/--no-align --align-with
// --border), declared from the one option table (fervid/face_recipe.h) for every command that
// finds or crops faces, or records how a model's faces are to be cropped. Values are parsed and
// range-checked by the table, so each error reads as everywhere else: "--margin must be in
// [0, 2], got 3".
#pragma once

#include <CLI/CLI.hpp>

#include <deque>
#include <functional>
#include <sstream>
#include <string>

#include "fervid/face_recipe.h"

namespace fervid::cli {

class RecipeFlags {
 public:
  // `default_text(option)`: how this command's default reads in the help ("the model's").
  void add_to(CLI::App* cmd, const std::string& group,
              const std::function<std::string(const RecipeOption&)>& default_text) {
    cmd_ = cmd;
    const auto& table = face_recipe_options();
    text_.assign(table.size(), std::string());
    on_.assign(table.size(), false);
    for (size_t i = 0; i < table.size(); ++i) {
      const auto& o = table[i];
      // Choices are named in the help text itself; numbers get their range.
      const bool number = !o.is_bool() && o.choices.empty();
      const std::string help = o.help + (number ? "; " + o.allowed() : "") + " (default: " + default_text(o) + ")";
      if (o.is_bool()) {
        cmd->add_flag(o.flag() + ",!--no-" + o.flag().substr(2), on_[i], help)->group(group);
      } else {
        const bool integer = std::holds_alternative<int FaceRecipe::*>(o.field);
        cmd->add_option(o.flag(), text_[i], help)->group(group)->type_name(number ? (integer ? "INT" : "NUMBER") : "NAME");
      }
    }
  }

  // The flags given on the command line, each checked (std::invalid_argument naming the flag).
  FaceRecipeOverrides given() const {
    FaceRecipeOverrides out;
    if (!cmd_) return out;
    const auto& table = face_recipe_options();
    for (size_t i = 0; i < table.size(); ++i) {
      const auto& o = table[i];
      if (cmd_->count(o.flag()) == 0) continue;
      if (o.is_bool()) {
        out.set(o, on_[i], o.flag());
      } else {
        out.set_text(o, text_[i], o.flag());
      }
    }
    return out;
  }

  // A default as the help shows it: the value in `r`.
  static std::string value_of(const FaceRecipe& r, const RecipeOption& o) {
    const auto v = o.get(r);
    if (v.is_string()) return v.get<std::string>();
    if (v.is_boolean()) return v.get<bool>() ? "on" : "off";
    std::ostringstream s;
    s << v.get<double>();
    return s.str();
  }

 private:
  CLI::App* cmd_ = nullptr;
  std::deque<std::string> text_;  // deque: add_option keeps references to the elements
  std::deque<bool> on_;
};

}  // namespace fervid::cli
