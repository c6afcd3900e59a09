#include "fervid/trained_data.h"

#include <stdexcept>

#include "fervid/data_source.h"
#include "fervid/evaluate.h"
#include "fervid/splits.h"

namespace fervid {

TrainedData trained_data(const nlohmann::json& metadata, const std::string& data) {
  TrainedData t;
  if (!metadata.is_object() || !metadata.contains("train_config")) return t;
  try {
    t.config = train_config_from_json(metadata.at("train_config"));
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string("the model's recorded training configuration: ") + e.what());
  }
  t.known = true;
  const auto given = resolve_source_format(data, SourceFormat::kAuto);
  SourceFormat trained = t.config.source.format;
  if (trained == SourceFormat::kAuto) {
    try {
      trained = resolve_source_format(t.config.data, SourceFormat::kAuto);
    } catch (const std::exception&) {
      // The training data is not on this machine: compare the recorded format only.
    }
  }
  t.same_format = trained != SourceFormat::kAuto && trained == given;
  return t;
}

Calibration calibrate_model_file(const std::string& model_path, const std::string& data, const std::string& out_path) {
  nlohmann::json metadata;
  read_model_config(model_path, &metadata);
  const auto trained = trained_data(metadata, data);
  if (!trained.known) throw std::invalid_argument("calibrate: " + model_path + " records no training run, so its validation samples are unknown");
  if (!trained.same_format) {
    throw std::invalid_argument("calibrate: " + data + " is not of the format " + model_path + " was trained on (" +
                                trained.config.data + ")");
  }
  const auto& c = trained.config;
  if (validates_on_test_split(c)) {
    throw std::invalid_argument("calibrate: " + model_path + " chose its checkpoints on PrivateTest, a test split: "
                                "a temperature is never fitted on test data");
  }
  auto run = c;
  run.data = data;  // the run's data, perhaps at another path on this machine
  run.source.soft_targets = false;
  run.extra_train_data.clear();  // training-only samples: not needed for the validation split
  const auto src = open_run_data(run);
  const auto splits = run_splits(run, src.data);
  if (splits.val.empty()) throw std::invalid_argument("calibrate: no validation samples (" + splits.val_description + ") in " + data);
  return calibrate_on_validation(model_path, src.data, splits, {{"data", data}, {"data_key", src.cache_key}}, out_path);
}

Calibration calibrate_on_validation(const std::string& model_path, const Dataset& data, const RunSplits& splits,
                                    const nlohmann::json& provenance, const std::string& out_path,
                                    const std::string& device) {
  auto model = load_model(model_path);
  model.net->to(torch::Device(device));
  auto calibration = calibrate_temperature(model.net, data, splits.val, splits.val_description);
  for (const auto& [key, value] : provenance.items()) calibration.fit[key] = value;
  rewrite_calibration(model_path, calibration, out_path);
  return calibration;
}

}  // namespace fervid
