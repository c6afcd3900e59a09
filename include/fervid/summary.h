// Per-layer parameters, multiply-accumulates and output shapes of a configured network
// (what `fervid info` prints). The header is torch-free; the rows come from the real module.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "fervid/config.h"

namespace fervid {

struct LayerSummary {
  std::string name;           // module path, e.g. "block3.conv2.branch3x3.0"
  std::string kind;           // "conv3x3", "conv1x1", "bn", "fc", "pool", ...
  std::vector<int64_t> output_shape;  // batch 1, NCHW or NC
  int64_t params = 0;         // trainable parameters, all of them (weights, biases, BN affine)
  int64_t kernel_params = 0;  // the paper's K^2 * I * O for convolutions, I * O for FC, else 0
  int64_t macs = 0;           // multiply-accumulates at batch 1
};

struct ModelSummary {
  ModelConfig config;
  std::vector<LayerSummary> layers;
  int64_t total_params = 0;          // every trainable parameter of the network
  int64_t total_macs = 0;            // every multiply-accumulate of a batch-1 forward pass
  int64_t backbone_conv_params = 0;  // the 13 VGG convolutions' K^2 * I * O (paper's formula)
  int64_t backbone_conv_macs = 0;    // the 13 VGG convolutions' K^2 * I * O * H_out * W_out
  int64_t buffers = 0;               // BN running statistics (not trainable)
};

// Builds the network of `config` and walks one batch-1 forward pass to fill the rows.
ModelSummary summarize(const ModelConfig& config);

}  // namespace fervid
