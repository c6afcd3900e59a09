// How the training run behind a model file read its data, so that evaluation and calibration
// rebuild the same samples: the file's metadata "train_config" (trainer.h writes it into every
// model file of a run). Torch-free.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "fervid/model_io.h"
#include "fervid/trainer.h"

namespace fervid {

struct TrainedData {
  TrainConfig config;        // the run's resolved configuration; the defaults when unknown
  bool known = false;        // the file records a training configuration
  // `data` is read in the format the run's data was (its source options, FER+ labels, CK+
  // frames, and its folds and seed then describe `data` too). False for unknown runs.
  bool same_format = false;
};

// Throws std::invalid_argument naming the field when the recorded configuration does not parse,
// and DataError when `data` is neither a file nor a folder fervid reads.
TrainedData trained_data(const nlohmann::json& model_metadata, const std::string& data);

// Fits the temperature of the model file `model_path` on the validation samples its run chose
// checkpoints on (its val_split, validation fraction or held-out fold), read from `data` the
// way the run read it, and writes the model with that calibration to `out_path` (may be
// `model_path`; temporary file, then rename). `data` must be of the run's data format.
// std::invalid_argument when the file records no training run, or its validation samples are
// a test split (PrivateTest): temperature is never fitted on test data.
Calibration calibrate_model_file(const std::string& model_path, const std::string& data, const std::string& out_path);

// What both ways of calibrating share (the end of `fervid train`, `fervid model calibrate`):
// fits the temperature of the model file `model_path` on `splits.val` of `data` (never test
// data: callers check), records `provenance` (the data's path and cache key, the epoch...) in
// the fit beside the split, and writes the model with that calibration to `out_path`.
// `device`: where the network runs ("cpu", "cuda:0").
Calibration calibrate_on_validation(const std::string& model_path, const Dataset& data, const RunSplits& splits,
                                    const nlohmann::json& provenance, const std::string& out_path,
                                    const std::string& device = "cpu");

}  // namespace fervid
