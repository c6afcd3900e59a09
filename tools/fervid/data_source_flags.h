// The flags that say how a dataset is read (DataSourceOptions), declared once for every command
// that reads one: `data check`, `data preview`, `train`, `cv` and `ablate` (train_flags.h puts
// them where the training option table has "source"). The face-recipe flags
// are `fervid predict`'s (recipe_flags.h: one table).
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "fervid/data_source.h"
#include "recipe_flags.h"

namespace fervid::cli {

struct DataSourceFlags {
  enum class Use {
    kInspect,  // data check | preview: every flag
    kTrain,    // train: no --size (the model's input decides), no --keep-contempt (unlabelled samples
               // cannot train); --soft-targets
  };

  std::string format = "auto", ferplus, ferplus_rule = "majority";
  bool strict = false, keep_contempt = false, first_frame_neutral = false, soft_targets = false;
  int size = 48;
  int frames_per_sequence = 0;
  double ferplus_mix = 0;
  RecipeFlags recipe;

  void add_to(CLI::App* cmd, Use use, const std::string& group = "Data") {
    auto* g = group.c_str();
    cmd->add_option("--format", format, "auto | fer2013 | folder | ckplus48 | ckplus | photos")
        ->check(CLI::IsMember({"auto", "fer2013", "folder", "ckplus48", "ckplus", "photos"}))
        ->capture_default_str()
        ->group(g);
    cmd->add_option("--ferplus", ferplus, "FER+ votes (fer2013new.csv): use FER+ labels instead of FER2013's")->group(g);
    cmd->add_option("--ferplus-rule", ferplus_rule, "majority (FER+'s rule) | plurality (ties excluded)")
        ->check(CLI::IsMember({"majority", "plurality"}))
        ->capture_default_str()
        ->group(g);
    cmd->add_flag("--strict", strict, "An invalid entry is an error instead of a counted skip")->group(g);
    if (use == Use::kInspect) {
      cmd->add_option("--size", size, "Image side for folder formats")->capture_default_str()->group(g);
      cmd->add_flag("--keep-contempt", keep_contempt,
                    "CK+: keep contempt images, unlabelled (default: dropped, as the paper does)")
          ->group(g);
    }
    // The face recipe (recipe_flags.h): how photos and CK+ frames are cropped; for training also
    // what the model records as its recipe, whatever the source (defaults: FaceRecipe{}).
    const FaceRecipe defaults;
    recipe.add_to(cmd, group + ": faces (--format photos or ckplus" +
                           (use == Use::kTrain ? "; any format: the model's recipe)" : ")"),
                  [defaults](const RecipeOption& o) { return RecipeFlags::value_of(defaults, o); });
    cmd->add_option("--frames-per-sequence", frames_per_sequence,
                    "CK+ (--format ckplus): the last N frames of each labelled sequence (default 3, the paper's)")
        ->group(g);
    cmd->add_flag("--first-frame-neutral", first_frame_neutral,
                  "CK+ (--format ckplus): also each labelled sequence's first frame, as neutral")
        ->group(g);
    if (use == Use::kTrain) {
      cmd->add_flag("--soft-targets", soft_targets, "FER+ vote distributions as soft targets")->group(g);
      cmd->add_option("--ferplus-mix", ferplus_mix,
                      "With --ferplus: keep FER2013's labels, soft targets (1 - W) one-hot + W FER+ votes; W in [0, 1]")
          ->group(g);
    }
  }

  // Writes the flags given on the command line onto `o` (others keep o's values: a config
  // file's, or the defaults).
  void apply(const CLI::App* cmd, DataSourceOptions& o) const {
    auto given = [&](const char* name) {
      try {
        return cmd->count(name) > 0;
      } catch (const CLI::OptionNotFound&) {
        return false;  // not declared for this command
      }
    };
    if (given("--format")) o.format = parse_source_format(format);
    if (given("--ferplus")) o.ferplus = ferplus;
    if (given("--ferplus-rule")) {
      o.ferplus_rule = ferplus_rule == "plurality" ? FerPlusOptions::Labels::kPlurality : FerPlusOptions::Labels::kMajority;
    }
    if (given("--strict")) o.strict = strict;
    if (given("--size")) o.size = size;
    if (given("--keep-contempt")) o.keep_contempt = keep_contempt;
    o.face.merge(recipe.given());
    if (given("--frames-per-sequence")) o.frames_per_sequence = frames_per_sequence;
    if (given("--first-frame-neutral")) o.first_frame_neutral = first_frame_neutral;
    if (given("--soft-targets")) o.soft_targets = soft_targets;
    if (given("--ferplus-mix")) o.ferplus_mix = ferplus_mix;
  }
};

}  // namespace fervid::cli
