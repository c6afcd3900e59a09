// Model files (design.md section 2; style.md habit 13).
//
// One file holds: a magic tag, the format version, a JSON header (full ModelConfig, class
// names, preprocessing, free-form metadata such as the training command, and the table of
// tensors), the raw little-endian tensor data, and an FNV-1a checksum of all of it. A model
// is loaded by path alone. Every failure (missing, foreign, truncated, corrupted, newer
// version, different architecture) throws ModelFileError whose message names the file and
// the problem; nothing crashes. Files are written to a temporary name and renamed.
#pragma once

#include <nlohmann/json.hpp>

#include <stdexcept>
#include <string>

#include "fervid/config.h"
#include "fervid/config_json.h"
#include "fervid/model.h"

namespace fervid {

inline constexpr int kModelFormatVersion = 1;

class ModelFileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct LoadedModel {
  MCSANet net{nullptr};     // in eval mode, on the CPU
  nlohmann::json metadata;  // what save_model() was given
  std::string sha256;       // not computed here: callers that report hashes fill it
};

void save_model(const std::string& path, MCSANet& net, const nlohmann::json& metadata = {});
LoadedModel load_model(const std::string& path);
// Loads the weights of `path` into an existing network, refusing a file whose architecture
// differs: the message names the first differing field and both values.
nlohmann::json load_weights(const std::string& path, MCSANet& net);
// The header alone (config and metadata), without reading the weights.
ModelConfig read_model_config(const std::string& path, nlohmann::json* metadata = nullptr);

}  // namespace fervid
