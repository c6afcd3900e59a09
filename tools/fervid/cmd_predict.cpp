// fervid predict: every face in images, with its expression; JSON and annotated images.
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <memory>
#include <set>

#include "analyzer_flags.h"
#include "commands.h"
#include "fervid/atomic_file.h"
#include "fervid/image_io.h"
#include "fervid/json_text.h"

namespace fervid::cli {

namespace fs = std::filesystem;

namespace {

// The images named on the command line, folders expanded (sorted, recursively). A path that
// does not exist is kept: it fails with its own message when read.
std::vector<std::string> expand_inputs(const std::vector<std::string>& inputs) {
  std::vector<std::string> files;
  for (const auto& in : inputs) {
    std::error_code ec;
    if (!fs::is_directory(fs::u8path(in), ec)) {
      files.push_back(in);
      continue;
    }
    std::vector<std::string> found;
    for (const auto& e : fs::recursive_directory_iterator(fs::u8path(in), ec)) {
      if (e.is_regular_file() && has_image_extension(e.path().u8string())) found.push_back(e.path().u8string());
    }
    if (ec) throw DataError(in + ": cannot list folder: " + ec.message());
    if (found.empty()) throw DataError(in + ": folder holds no image (png, jpg, bmp, ...)");
    std::sort(found.begin(), found.end());
    files.insert(files.end(), found.begin(), found.end());
  }
  return files;
}

// A name for the image's outputs, unique within this run: its stem, then stem-2, stem-3 ...
// (two photos called img1.jpg in different folders must not overwrite each other's output).
std::string unique_stem(const std::string& image, std::set<std::string>& used) {
  const std::string stem = fs::u8path(image).stem().u8string();
  std::string name = stem;
  for (int k = 2; !used.insert(name).second; ++k) name = stem + "-" + std::to_string(k);
  return name;
}

}  // namespace

void add_predict_command(CLI::App& app, const GlobalOptions& /*global*/) {
  struct Flags {
    std::vector<std::string> inputs;
    bool json = false;
    std::string annotate, crops;
    bool whole = false;
    AnalyzerFlags analyzer;
  };
  auto f = std::make_shared<Flags>();
  auto* cmd = app.add_subcommand("predict", "Every face in images (files or folders) and its expression");
  cmd->add_option("images", f->inputs, "Image files or folders of images")->required();
  cmd->add_flag("--json", f->json, "Print one JSON document (images, faces, boxes, probabilities)");
  cmd->add_option("--annotate", f->annotate,
                  "Write the image with boxes and labels here (a folder when several images are given)");
  cmd->add_option("--crops", f->crops, "Write each face as the network sees it (gray, model size) into this folder");
  cmd->add_flag("--whole-image", f->whole, "Each image is one face already cropped: no detection (margin 0)");
  f->analyzer.add_to(cmd);
  cmd->callback([f] {
    const auto files = expand_inputs(f->inputs);
    const bool many = files.size() > 1;
    if (!f->annotate.empty() && many) fs::create_directories(fs::u8path(f->annotate));
    if (!f->crops.empty()) fs::create_directories(fs::u8path(f->crops));
    FaceRecipeOverrides whole;
    if (f->whole) whole.set("margin", 0);  // each image is the face
    const auto analyzer = f->analyzer.make(whole);
    const auto& names = analyzer.class_names();
    nlohmann::json report = {{"model", f->analyzer.model_path()},
                             {"face_recipe", to_json(analyzer.recipe())},
                             {"images", nlohmann::json::array()}};
    int failed = 0;
    size_t faces_total = 0;
    std::set<std::string> used_names;
    for (const auto& file : files) {
      // Names are bytes on Linux: one that is not UTF-8 is written with \xNN escapes, so the
      // report (and every other image in it) is still printed.
      const std::string shown = printable_utf8(file);
      nlohmann::json entry = {{"image", shown}};
      const std::string stem = unique_stem(file, used_names);
      try {
        cv::Mat image = read_image(file);
        const auto faces = f->whole ? std::vector<FaceExpression>{analyzer.analyze_whole(image)}
                                    : analyzer.analyze(image);
        if (!f->crops.empty()) {
          for (size_t i = 0; i < faces.size(); ++i) {
            const auto crop = analyzer.pipeline().prepare(image, faces[i].box).face;
            write_image((fs::u8path(f->crops) / fs::u8path(stem + "-face" + std::to_string(i + 1) + ".png")).u8string(), crop);
          }
        }
        faces_total += faces.size();
        entry["width"] = image.cols;
        entry["height"] = image.rows;
        entry["faces"] = nlohmann::json::array();
        for (const auto& face : faces) entry["faces"].push_back(to_json(face, names));
        if (!f->json) {
          std::cout << fmt::format("{}: {} face{}\n", shown, faces.size(), faces.size() == 1 ? "" : "s");
          for (size_t i = 0; i < faces.size(); ++i) {
            const auto& face = faces[i];
            std::vector<size_t> order(face.probs.size());
            for (size_t k = 0; k < order.size(); ++k) order[k] = k;
            std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return face.probs[a] > face.probs[b]; });
            std::string rest;
            for (size_t k = 1; k < std::min<size_t>(3, order.size()); ++k)
              rest += fmt::format("{}{} {:.0f}%", k > 1 ? ", " : "", names[order[k]], 100 * face.probs[order[k]]);
            std::cout << fmt::format("  face {} at x={} y={} {}x{}: {} {:.0f}% ({})\n", i + 1, face.box.x, face.box.y,
                                     face.box.width, face.box.height, face.label_name, 100 * face.confidence, rest);
          }
        }
        if (!f->annotate.empty()) {
          draw_expressions(image, faces);
          const auto out = many ? (fs::u8path(f->annotate) / fs::u8path(stem + ".png")).u8string() : f->annotate;
          write_image(out, image);
          entry["annotated"] = printable_utf8(out);
          if (!f->json) std::cout << "  annotated: " << printable_utf8(out) << "\n";
        }
      } catch (const std::exception& e) {
        ++failed;
        entry["error"] = printable_utf8(e.what());
        std::cerr << "fervid: error: " << printable_utf8(e.what()) << "\n";
      }
      report["images"].push_back(entry);
    }
    report["faces"] = faces_total;
    report["failed"] = failed;
    if (f->json) std::cout << dump_json(report, 2) << "\n";
    if (failed > 0) throw CLI::RuntimeError(1);
  });
}

}  // namespace fervid::cli
