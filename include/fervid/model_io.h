// Model files (design.md section 2; style.md habit 13).
//
// One file holds: a magic tag, the format version, a JSON header (full ModelConfig, class
// names, preprocessing, the face recipe, free-form metadata such as the training command, and
// the table of tensors), the raw little-endian tensor data, and an FNV-1a checksum of all of
// it. A model is loaded by path alone.
//
// Versions: 2 (written) adds "face_recipe" to the header: every option of face_recipe.h's
// table by name, how the model's faces are found and cropped. Version-1 files still load and
// get FaceRecipe::version1() (the Haar cascade, margin 0.1, no alignment); a v2 header without
// a recipe, with an unknown key, an unknown name or a value out of range is a ModelFileError
// naming the file and the field. An optional "calibration" object (both versions may carry it;
// absent: temperature 1) holds the softmax temperature fitted after training (Calibration).
// Other versions are refused. Every failure (missing, foreign, truncated, corrupted, newer
// version, different architecture) throws ModelFileError whose message names the file and
// the problem; nothing crashes. Files are written to a temporary name and renamed.
#pragma once

#include <nlohmann/json.hpp>

#include <stdexcept>
#include <string>

#include "fervid/config.h"
#include "fervid/config_json.h"
#include "fervid/face_recipe.h"
#include "fervid/model.h"

namespace fervid {

inline constexpr int kModelFormatVersion = 2;
inline constexpr int kOldestModelFormatVersion = 1;

class ModelFileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Temperature scaling (Guo et al. 2017): probabilities are softmax(logits / temperature), one
// scalar fitted on a validation split after training, never on test data. It changes confidence,
// not the predicted class. `fit` records how it was fitted (split, data hash, NLL and ECE before
// and after); it is kept in the header verbatim.
struct Calibration {
  double temperature = 1.0;  // in [kMinTemperature, kMaxTemperature]
  nlohmann::json fit = nlohmann::json::object();
  nlohmann::json to_json() const;
  // Throws std::invalid_argument naming `where` and the field (temperature missing, not a
  // number, or out of range).
  static Calibration from_json(const nlohmann::json& j, const std::string& where);
};
inline constexpr double kMinTemperature = 0.05, kMaxTemperature = 20.0;

struct LoadedModel {
  MCSANet net{nullptr};     // in eval mode, on the CPU
  nlohmann::json metadata;  // what save_model() was given
  FaceRecipe face_recipe;   // the file's (version 1: FaceRecipe::version1())
  Calibration calibration;  // absent from the file: temperature 1
  int format_version = kModelFormatVersion;
  std::string sha256;       // not computed here: callers that report hashes fill it
};

// Writes version kModelFormatVersion with `recipe` (validated: std::invalid_argument naming the field).
void save_model(const std::string& path, MCSANet& net, const nlohmann::json& metadata = {},
                const FaceRecipe& recipe = FaceRecipe{}, const Calibration& calibration = {});
// Refuses, with a ModelFileError naming the file: a file that is not a model (after its first
// 8 bytes, never read whole), a truncated or corrupted one, and weights that are NaN or infinite.
LoadedModel load_model(const std::string& path);
// The same from a model file's bytes (`name` stands for the file in messages): for callers that
// hold the bytes already, and the fuzzer.
LoadedModel load_model_from_bytes(std::string bytes, const std::string& name);
// Loads the weights of `path` into an existing network, refusing a file whose architecture
// differs: the message names the first differing field and both values.
nlohmann::json load_weights(const std::string& path, MCSANet& net);
// The header alone (config and metadata), without reading the weights.
ModelConfig read_model_config(const std::string& path, nlohmann::json* metadata = nullptr);

// Everything but the weights (the whole file is still read: its checksum is verified).
struct ModelHeader {
  int format_version = kModelFormatVersion;
  ModelConfig config;
  nlohmann::json metadata;
  FaceRecipe face_recipe;     // version 1: FaceRecipe::version1()
  bool recipe_stored = true;  // false for version 1: the recipe is the version-1 rule's
  Calibration calibration;
};
ModelHeader read_model_header(const std::string& path);
FaceRecipe read_face_recipe(const std::string& path);

// Rewrites the model file `path` with another face recipe into `out_path` (may be `path`),
// weights, config and metadata byte for byte the same, as version kModelFormatVersion (a
// version-1 file is upgraded); written to a temporary name and renamed. `fervid model
// set-recipe` runs this.
void rewrite_face_recipe(const std::string& path, const FaceRecipe& recipe, const std::string& out_path);
// The same for the calibration (`fervid model calibrate`): only the header's "calibration"
// changes (a version-1 file is upgraded, keeping its version-1 recipe).
void rewrite_calibration(const std::string& path, const Calibration& calibration, const std::string& out_path);

}  // namespace fervid
