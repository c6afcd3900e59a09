// The flags every command that recognises faces shares (predict, video): which model, how faces
// are found and prepared. OpenCV part of the CLI.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "fervid/analyzer.h"

namespace fervid::cli {

struct AnalyzerFlags {
  std::string model;  // "" = default_model_path()
  bool align = false, flip = false;
  AnalyzerOptions options;

  // The detection flags set `detector` when given (fervid video: VideoOptions::scan, whose
  // defaults differ from the photo ones), else the Analyzer's own detector options.
  void add_to(CLI::App* cmd, FaceDetectorOptions* detector = nullptr) {
    auto* g = "Recognition";
    auto& d = detector ? *detector : options.faces.detector;
    cmd->add_option("--model", model, "Model file (default: the shipped model, see `fervid info --model`)")->group(g);
    cmd->add_flag("--align", align, "Rotate each face so the eyes are level (dlib's 68 landmarks)")->group(g);
    cmd->add_flag("--flip", flip, "Average each face's prediction with its mirror image (2x the work)")->group(g);
    cmd->add_option("--min-face", d.min_face_size, "Smallest face side in pixels")->group(g)->capture_default_str()->check(CLI::PositiveNumber);
    cmd->add_option("--max-face", d.max_face_size, "Largest face side in pixels (0 = no limit)")->group(g)->capture_default_str()->check(CLI::NonNegativeNumber);
    cmd->add_option("--neighbors", d.min_neighbors, "Detections a face needs (higher: fewer false faces)")->group(g)->capture_default_str()->check(CLI::PositiveNumber);
    cmd->add_option("--scale-step", d.scale_factor, "Detector window growth per scale")->group(g)->capture_default_str();
    cmd->add_option("--detect-side", d.max_detect_side, "Detect on a copy at most this long (0 = full size)")->group(g)->capture_default_str()->check(CLI::NonNegativeNumber);
    cmd->add_option("--margin", options.faces.preprocess.margin, "Crop margin around the box, as a fraction of its side")->group(g)->capture_default_str();
  }

  std::string model_path() const { return model.empty() ? default_model_path() : model; }

  Analyzer make() const {
    auto o = options;
    o.faces.preprocess.align = align;
    o.classifier.flip_average = flip;
    return Analyzer(model_path(), o);
  }
};

}  // namespace fervid::cli
