// A reader for TensorFlow.js graph models (model.json topology + weights manifest + .bin
// shards, as `tensorflowjs_converter` writes them) that rebuilds the graph on libtorch, for the
// third-party networks fervid runs (MediaPipe's BlazeFace face detector). Core: no OpenCV.
//
// Supported operations, with TensorFlow's semantics: Placeholder, Const, Identity,
// _FusedConv2D (fused_ops [BiasAdd] or [BiasAdd, Relu] / [BiasAdd, Relu6]), Conv2D,
// DepthwiseConv2dNative, AddV2 / Add (broadcasting), Relu, Relu6, MaxPool, Pad, Reshape;
// data_format NHWC; padding VALID, SAME (TF's rule: the odd pixel of padding goes after) and
// EXPLICIT; strides and dilations. Anything else - another operation, a malformed file, a
// weight that is missing, of another dtype or of the wrong size, an input naming no node -
// throws ModelFileError naming the file and the node.
//
// Execution, two engines with the same results (tests/test_tfjs_graph.cpp runs both):
// - oneDNN (kFastest, when fervid is built with oneDNN's headers and the graph is one it runs:
//   rank-4 values, AddV2 without broadcasting, Reshape only on the way to an output): NHWC
//   buffers end to end, filters reordered once at the first run of an input shape, TF's
//   asymmetric SAME padding inside the convolution, and convolution -> AddV2 -> Relu as one
//   convolution with sum and ReLU post-ops writing over the residual (src/nn/tfjs_dnnl.cpp);
// - libtorch (otherwise, or kLibtorch): rank-4 values in channels_last memory (NHWC bytes, NCHW
//   logical shape), so convolutions run on oneDNN's NHWC kernels through libtorch's operators,
//   and values used only once are reused in place (AddV2 and Relu write over their input).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace fervid {

enum class TfjsEngine : uint8_t { kFastest, kLibtorch };

class TfjsGraph {
 public:
  // Reads `model_json_path` and the weight shards it names (paths relative to its folder).
  // Throws ModelFileError naming the file (and the node or weight) for anything unsupported or
  // malformed.
  explicit TfjsGraph(const std::string& model_json_path, TfjsEngine engine = TfjsEngine::kFastest);
  ~TfjsGraph();
  TfjsGraph(TfjsGraph&&) noexcept;
  TfjsGraph& operator=(TfjsGraph&&) noexcept;

  // Runs the graph on `input`: float32, NHWC (TensorFlow's layout), the one Placeholder's
  // shape with any -1 free and any batch size (a Reshape whose target starts with the declared
  // batch takes the input's: converters write the batch of 1 into Reshape shapes). Returns the outputs in output_names() order, each in TensorFlow's
  // layout and shape (NHWC for rank 4), contiguous, owned by the caller. Thread-safe: the
  // graph is read-only; each call holds its own intermediate values. Runs under
  // torch::InferenceMode. Wrong rank, shape or dtype: std::invalid_argument with the values.
  std::vector<torch::Tensor> run(const torch::Tensor& input) const;

  // The signature's outputs (userDefinedMetadata.signature.outputs, sorted by name) when the
  // file has one, else every non-constant node nobody consumes, in file order; names without
  // ":0".
  const std::vector<std::string>& output_names() const;
  // The Placeholder's declared shape (NHWC; -1 where free).
  const std::vector<int64_t>& input_shape() const;
  // Operations in the graph that compute something (not Const, Placeholder, Identity).
  int compute_nodes() const;
  // Multiply-accumulates of one run at input_shape() (convolutions only).
  int64_t multiply_accumulates() const;
  const std::string& path() const;
  // "onednn" or "libtorch": what run() uses for inputs of rank 4.
  std::string engine() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fervid
