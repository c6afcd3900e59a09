// Internal to src/nn: the TF.js graph as read (tfjs_graph.cpp), shared with the oneDNN executor
// (tfjs_dnnl.cpp). Not installed.
#pragma once

#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace fervid::tfjs_internal {

enum class Op : uint8_t { kPlaceholder, kConst, kIdentity, kConv, kDepthwise, kAdd, kRelu, kRelu6, kMaxPool, kPad, kReshape };

enum class Padding : uint8_t { kValid, kSame, kExplicit };

// One node after reading: inputs resolved to value indices, attributes decoded.
struct Node {
  std::string name;
  std::string op_name;
  Op op = Op::kIdentity;
  std::vector<int> inputs;  // value indices (= node indices)
  // Convolutions and pooling.
  Padding padding = Padding::kValid;
  std::vector<int64_t> explicit_pad;  // NHWC pairs, 8 values, for kExplicit
  int64_t stride_h = 1, stride_w = 1, dil_h = 1, dil_w = 1, k_h = 1, k_w = 1;
  bool relu = false, relu6 = false;
  torch::Tensor weight;  // prepacked: OIHW, channels_last
  torch::Tensor bias;
  // Pad (NHWC pairs) and Reshape (target shape), from their constant inputs.
  std::vector<int64_t> pads;
  std::vector<int64_t> shape;
  // Placeholder's declared shape; Const's tensor (TF layout).
  std::vector<int64_t> declared_shape;
  torch::Tensor constant;
  bool inplace_ok = false;  // its value may be overwritten by its last consumer
  bool is_output = false;
  int last_use = -1;        // position in `order` of the last node that reads it
};


// TensorFlow's SAME rule for one spatial dimension: output ceil(in / stride), and the padding
// needed for it split with the odd pixel after.
inline std::pair<int64_t, int64_t> same_padding(int64_t in, int64_t k, int64_t stride, int64_t dilation) {
  const int64_t out = (in + stride - 1) / stride;
  const int64_t eff = (k - 1) * dilation + 1;
  const int64_t total = std::max<int64_t>((out - 1) * stride + eff - in, 0);
  return {total / 2, total - total / 2};
}

// Padding of one node for an input of h x w: {top, bottom, left, right}.
inline std::array<int64_t, 4> spatial_padding(const Node& n, int64_t h, int64_t w) {
  if (n.padding == Padding::kValid) return {0, 0, 0, 0};
  if (n.padding == Padding::kExplicit)
    return {n.explicit_pad[2], n.explicit_pad[3], n.explicit_pad[4], n.explicit_pad[5]};
  const auto [t, b] = same_padding(h, n.k_h, n.stride_h, n.dil_h);
  const auto [l, r] = same_padding(w, n.k_w, n.stride_w, n.dil_w);
  return {t, b, l, r};
}

}  // namespace fervid::tfjs_internal
