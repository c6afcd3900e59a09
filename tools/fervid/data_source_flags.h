// The flags that say how a dataset is read (DataSourceOptions), declared once for every command
// that reads one: `data check`, `data preview` and `train`. Face-detection flags have the names
// `fervid predict` uses (analyzer_flags.h): --min-face --max-face --neighbors --scale-step
// --detect-side --margin.
#pragma once

#include <CLI/CLI.hpp>

#include <sstream>
#include <string>

#include "fervid/data_source.h"
#ifdef FERVID_WITH_OPENCV
#include "fervid/vision.h"
#endif

namespace fervid::cli {

struct DataSourceFlags {
  enum class Use {
    kInspect,  // data check | preview: every flag
    kTrain,    // train: no --size (the model's input decides), no --keep-contempt (unlabelled samples cannot train)
  };

  std::string format = "auto", ferplus, ferplus_rule = "majority";
  bool strict = false, keep_contempt = false, align = false, first_frame_neutral = false;
  int size = 48;
  int min_face = 0, max_face = 0, neighbors = 0, detect_side = 0, frames_per_sequence = 0;
  double scale_step = 0, margin = 0;

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
    cmd->add_flag("--align", align, "Photos / CK+: align the eye line (dlib landmarks)")->group(g);
    // Defaults come from the detector and crop options themselves (vision.h), never repeated here.
    auto detect = [](const std::string& default_value) {
      return " (--format photos or ckplus; default " + default_value + ")";
    };
#ifdef FERVID_WITH_OPENCV
    const FaceDetectorOptions d;
    const PreprocessOptions crop;
    auto text = [](double v) {
      std::ostringstream s;
      s << v;
      return s.str();
    };
    const std::string d_min = text(d.min_face_size), d_max = text(d.max_face_size), d_nb = text(d.min_neighbors),
                      d_step = text(d.scale_factor), d_side = text(d.max_detect_side), d_margin = text(crop.margin);
#else
    const std::string d_min = "the detector's", d_max = d_min, d_nb = d_min, d_step = d_min, d_side = d_min,
                      d_margin = d_min;
#endif
    cmd->add_option("--min-face", min_face, "Smallest face side in pixels" + detect(d_min))->group(g);
    cmd->add_option("--max-face", max_face, "Largest face side in pixels, 0 = no limit" + detect(d_max))->group(g);
    cmd->add_option("--neighbors", neighbors, "Detections a face needs (higher: fewer false faces)" + detect(d_nb))
        ->group(g);
    cmd->add_option("--scale-step", scale_step, "Detector window growth per scale, in (1, 2]" + detect(d_step))
        ->group(g);
    cmd->add_option("--detect-side", detect_side, "Detect on a copy at most this long, 0 = full size" + detect(d_side))
        ->group(g);
    cmd->add_option("--margin", margin, "Crop margin around the face box, as a fraction of its side" + detect(d_margin))
        ->group(g);
    cmd->add_option("--frames-per-sequence", frames_per_sequence,
                    "CK+ (--format ckplus): the last N frames of each labelled sequence (default 3, the paper's)")
        ->group(g);
    cmd->add_flag("--first-frame-neutral", first_frame_neutral,
                  "CK+ (--format ckplus): also each labelled sequence's first frame, as neutral")
        ->group(g);
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
    if (given("--align")) o.align = align;
    if (given("--min-face")) o.min_face = min_face;
    if (given("--max-face")) o.max_face = max_face;
    if (given("--neighbors")) o.neighbors = neighbors;
    if (given("--scale-step")) o.scale_step = scale_step;
    if (given("--detect-side")) o.detect_side = detect_side;
    if (given("--margin")) o.margin = margin;
    if (given("--frames-per-sequence")) o.frames_per_sequence = frames_per_sequence;
    if (given("--first-frame-neutral")) o.first_frame_neutral = first_frame_neutral;
  }
};

}  // namespace fervid::cli
