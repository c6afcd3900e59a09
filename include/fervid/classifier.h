// Expression classification of prepared face crops with a trained model: the inference core
// that the Analyzer, `fervid predict`, `fervid video` and the benchmarks share. Torch-free
// header; no OpenCV (faces come in as gray bytes, as preprocess_face() makes them).
//
// Thread safety: classify() is const and may be called from several threads at once on one
// Classifier (the network is read-only in inference mode; no lock), with the same results as
// sequential calls; so are the Analyzer calls built on it (analyzer.h). Construction is not
// thread-safe with respect to the same object.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "fervid/config.h"

namespace fervid {

struct ClassifierOptions {
  // Fold BatchNorm into the convolutions (ConvBnReluImpl::fold_batchnorm): same outputs to
  // float rounding, fewer operations per face.
  bool fold_batchnorm = true;
  // Mirror-averaged prediction (the image and its horizontal flip): ~2x the work.
  bool flip_average = false;
};

struct ExpressionScores {
  std::vector<float> probs;  // softmax of logits / the file's temperature, one per class, sums to 1
  int label = -1;            // argmax of probs
  float confidence = 0;      // probs[label]
};

// The shipped model's file name, in models/ of the source tree and share/fervid/models/ of an
// installation.
inline constexpr const char* kDefaultModelName = "fervid-default.fervid";

// Where the default model is, looked up in order: $FERVID_MODEL; models/ beside the running
// executable's folder or its parent (a build folder inside the source tree); the installed
// share/fervid/models/; the source tree this library was built from. Throws std::runtime_error
// listing every place looked at when none holds the file.
std::string default_model_path();
// A file shipped in models/ (`relative` to it, e.g. "third_party/blazeface/blazeface.json"),
// looked up in the same places as the default model after $FERVID_MODEL; std::runtime_error
// listing them when none holds it.
std::string shipped_model_path(const std::string& relative);

class Classifier {
 public:
  // Loads the model file (ModelFileError naming the file and the problem).
  explicit Classifier(const std::string& model_path, ClassifierOptions options = {});
  ~Classifier();
  Classifier(Classifier&&) noexcept;
  Classifier& operator=(Classifier&&) noexcept;

  // `faces`: each a contiguous input_size() x input_size() gray image (0..255, row-major), as
  // preprocess_face() returns. One batch, one forward pass. Empty input: empty result.
  std::vector<ExpressionScores> classify(const std::vector<const uint8_t*>& faces) const;
  ExpressionScores classify(const uint8_t* face) const;

  int input_size() const;
  const ModelConfig& config() const;
  const std::vector<std::string>& class_names() const;
  const nlohmann::json& metadata() const;  // what the model file carries (training command, ...)
  double temperature() const;              // the file's calibration: probs = softmax(logits / T)
  const std::string& model_path() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fervid
