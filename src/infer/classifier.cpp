#include "fervid/classifier.h"

#include <torch/nn/functional.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "fervid/model_io.h"

namespace fervid {

std::string shipped_model_path(const std::string& relative) {
  namespace fs = std::filesystem;
  std::vector<fs::path> tried;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path dir = exe.parent_path();
    tried = {dir / "models", dir.parent_path() / "models", dir.parent_path() / "share" / "fervid" / "models"};
  }
#ifdef FERVID_INSTALL_MODELS_DIR
  tried.emplace_back(FERVID_INSTALL_MODELS_DIR);
#endif
#ifdef FERVID_SOURCE_MODELS_DIR
  tried.emplace_back(FERVID_SOURCE_MODELS_DIR);
#endif
  std::string looked;
  for (const auto& d : tried) {
    const auto f = d / fs::u8path(relative);
    if (fs::is_regular_file(f, ec)) return f.string();
    looked += "\n  " + f.string();
  }
  throw std::runtime_error("shipped model " + relative + " not found; looked at:" + looked);
}

std::string default_model_path() {
  if (const char* env = std::getenv("FERVID_MODEL"); env && *env) {
    if (std::filesystem::is_regular_file(env)) return env;
    throw std::runtime_error(std::string("FERVID_MODEL=") + env + ": no such model file");
  }
  try {
    return shipped_model_path(kDefaultModelName);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(std::string("no default model found (give --model FILE or set FERVID_MODEL): ") + e.what());
  }
}

struct Classifier::Impl {
  LoadedModel model;
  ClassifierOptions options;
  std::string path;
  float scale = 1, shift = 0;  // x = gray * scale + shift == (gray / 255 - mean) / std
};

Classifier::Classifier(const std::string& model_path, ClassifierOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->model = load_model(model_path);
  impl_->options = options;
  impl_->path = model_path;
  impl_->model.net->eval();
  if (options.fold_batchnorm) impl_->model.net->fold_batchnorm();
  const auto& c = impl_->model.net->config();
  impl_->scale = static_cast<float>(1.0 / (255.0 * c.norm_std));
  impl_->shift = static_cast<float>(-c.norm_mean / c.norm_std);
}

Classifier::~Classifier() = default;
Classifier::Classifier(Classifier&&) noexcept = default;
Classifier& Classifier::operator=(Classifier&&) noexcept = default;

std::vector<ExpressionScores> Classifier::classify(const std::vector<const uint8_t*>& faces) const {
  std::vector<ExpressionScores> out;
  if (faces.empty()) return out;
  const int64_t n = static_cast<int64_t>(faces.size()), s = input_size();
  c10::InferenceMode guard;
  auto bytes = torch::empty({n, 1, s, s}, torch::kUInt8);
  auto* dst = bytes.data_ptr<uint8_t>();
  for (int64_t i = 0; i < n; ++i) {
    if (faces[static_cast<size_t>(i)] == nullptr) throw std::invalid_argument("Classifier::classify: face " + std::to_string(i) + " is null");
    std::memcpy(dst + i * s * s, faces[static_cast<size_t>(i)], static_cast<size_t>(s * s));
  }
  auto x = bytes.to(torch::kFloat32).mul_(impl_->scale).add_(impl_->shift);
  auto& net = impl_->model.net;
  // The file's calibration: softmax(logits / T), per view (as evaluate.h's predict()).
  const double t = impl_->model.calibration.temperature;
  auto softmax = [t](torch::Tensor logits) { return (t == 1.0 ? logits : logits.div_(t)).softmax(1); };
  torch::Tensor probs;
  if (impl_->options.flip_average) {
    auto both = softmax(net->forward(torch::cat({x, x.flip({3})})).logits);
    probs = (both.slice(0, 0, n) + both.slice(0, n, 2 * n)) * 0.5;
  } else {
    probs = softmax(net->forward(x).logits);
  }
  probs = probs.contiguous();
  const int64_t k = probs.size(1);
  const float* p = probs.data_ptr<float>();
  out.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    auto& r = out[static_cast<size_t>(i)];
    r.probs.assign(p + i * k, p + (i + 1) * k);
    r.label = 0;
    for (int64_t j = 1; j < k; ++j)
      if (r.probs[static_cast<size_t>(j)] > r.probs[static_cast<size_t>(r.label)]) r.label = static_cast<int>(j);
    r.confidence = r.probs[static_cast<size_t>(r.label)];
  }
  return out;
}

ExpressionScores Classifier::classify(const uint8_t* face) const { return classify(std::vector<const uint8_t*>{face}).front(); }

int Classifier::input_size() const { return impl_->model.net->config().input_size; }
const ModelConfig& Classifier::config() const { return impl_->model.net->config(); }
const std::vector<std::string>& Classifier::class_names() const { return impl_->model.net->config().classes(); }
const nlohmann::json& Classifier::metadata() const { return impl_->model.metadata; }
double Classifier::temperature() const { return impl_->model.calibration.temperature; }
const std::string& Classifier::model_path() const { return impl_->path; }

}  // namespace fervid
