// Internal: records one row per layer while a batch-1 forward pass runs (for summarize()).
#pragma once

#include <torch/nn.h>

#include <string>
#include <vector>

#include "fervid/summary.h"

namespace fervid::detail {

struct Trace {
  std::vector<LayerSummary> rows;

  void add(const std::string& name, const std::string& kind, const torch::Tensor& out,
           int64_t params, int64_t kernel_params, int64_t macs) {
    rows.push_back({name, kind, out.sizes().vec(), params, kernel_params, macs});
  }
  // Convolutions: the paper's K^2 * I * O (per group) is the weight count; each output
  // position costs that many multiply-accumulates.
  void conv(const std::string& name, const torch::nn::Conv2d& conv, const torch::Tensor& out) {
    const auto& w = conv->weight;
    const int64_t bias = conv->bias.defined() ? conv->bias.numel() : 0;
    const auto k = w.size(2);
    add(name, "conv" + std::to_string(k) + "x" + std::to_string(w.size(3)), out, w.numel() + bias,
        w.numel(), w.numel() * out.size(2) * out.size(3));
  }
  void linear(const std::string& name, const torch::nn::Linear& fc, const torch::Tensor& out) {
    const int64_t bias = fc->bias.defined() ? fc->bias.numel() : 0;
    add(name, "fc", out, fc->weight.numel() + bias, fc->weight.numel(), fc->weight.numel());
  }
  // Element-wise work (BN's scale and shift, attention rescaling, average pooling): one
  // multiply-accumulate per element touched.
  void elementwise(const std::string& name, const std::string& kind, const torch::Tensor& out,
                   int64_t params, int64_t macs) {
    add(name, kind, out, params, 0, macs);
  }
};

inline std::string join(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}

}  // namespace fervid::detail
