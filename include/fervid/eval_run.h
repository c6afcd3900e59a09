// `fervid eval` as a library call: a model file scored on a dataset the way its training run
// read its data (trained_data.h), its report.json and PNGs written to a folder. The CLI only
// parses flags into an EvalRequest and prints the EvalRun.
//
// What it writes to `out`:
//   report.json     model and data (with hashes), the data source options, the protocol, TTA,
//                   temperature, the metrics (evaluate.h), and for folders whose faces are
//                   detected here the end-to-end figures (an image without a face is wrong)
//   confusion.png, reliability.png, embedding.png   (when built with OpenCV)
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "fervid/dataset.h"
#include "fervid/evaluate.h"
#include "fervid/face_recipe.h"

namespace fervid {

// An option left empty takes the model's value: the data source, labels, folds and seed its run
// recorded (when `data` is of the training data's format), its face recipe, its temperature.
struct EvalRequest {
  std::string model, data;
  std::optional<std::string> format;     // auto | fer2013 | folder | ckplus48 | ckplus | photos
  bool whole_image = false;              // a folder of face crops scored whole (format folder)
  std::optional<std::string> ferplus;    // FER+ votes to score against; "none": FER2013's labels
  // Training | PublicTest | PrivateTest | all. Empty: a fold model's own held-out fold, else
  // PrivateTest, or all when the data has no PrivateTest (a folder of crops or photos).
  std::optional<std::string> split;
  std::optional<int> folds, fold;        // subject-independent fold to score
  std::optional<uint64_t> seed;          // of the fold assignment
  Tta tta = Tta::kNone;
  std::optional<double> temperature;     // 1: uncalibrated
  FaceRecipeOverrides recipe;            // over the model's recipe, for sources cropped here
  std::string out;                       // empty: eval-<split or foldN>-<tta>
  std::string device = "auto";           // auto | cpu | cuda | cuda:N
};

// Every image of a folder whose faces the detector looks for, an image without a face counted
// as a wrong answer of its class (its class folder).
struct EndToEndMetrics {
  int64_t images = 0, faces_found = 0, no_face = 0;
  std::vector<int64_t> no_face_per_class;
  double accuracy = 0, uar = 0;
};
// `missed`: the data source's skipped entries (field "face": no face found), named by path.
EndToEndMetrics end_to_end_metrics(const EvalMetrics& faces, const ReadReport& missed, int num_classes);
nlohmann::json to_json(const EndToEndMetrics& m);

struct EvalRun {
  nlohmann::json report;       // what report.json holds
  EvalMetrics metrics;         // on the faces scored
  std::optional<EndToEndMetrics> end_to_end;
  std::vector<std::string> class_names;
  std::string out, protocol;   // "split PublicTest", "all samples", "subject-independent fold 2 of 10 (seed 1)"
  double temperature = 1;
  std::vector<std::string> files;  // written, report.json first
};

// Throws std::invalid_argument for requests that contradict each other or select no sample,
// DataError for data it cannot read, ModelFileError for a bad model file.
EvalRun run_eval(const EvalRequest& request);

}  // namespace fervid
