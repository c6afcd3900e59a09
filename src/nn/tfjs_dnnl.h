// Internal to src/nn: runs a TF.js graph (tfjs_graph_internal.h) straight on oneDNN, the library
// libtorch's CPU convolutions already call, without libtorch's per-operator dispatch: NHWC
// buffers end to end, weights reordered once into the layout each convolution wants, TF's
// asymmetric SAME padding inside the convolution, and the residual block of MobileNet-style
// graphs (convolution -> AddV2 -> Relu) as one convolution with sum and ReLU post-ops writing
// over the residual's buffer. Built only with oneDNN's headers (FERVID_HAVE_DNNL); otherwise
// TfjsGraph runs every graph on libtorch.
#pragma once

#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "tfjs_graph_internal.h"

namespace fervid::tfjs_internal {

class DnnlExecutor {
 public:
  // The graph as TfjsGraph read it; `nodes` must outlive the executor. Returns null when the
  // graph uses something this executor does not run (a constant operand of AddV2, a
  // computation on a Reshape's result, a value that is not rank 4).
  static std::unique_ptr<DnnlExecutor> create(const std::vector<Node>& nodes, const std::vector<int>& order, int input,
                                              const std::vector<int>& outputs, int64_t batch_declared);
  ~DnnlExecutor();

  // `input`: float32 NHWC, contiguous. Outputs in `outputs` order, TF layout, owned by the
  // caller. Thread-safe; the plan for an input shape is built at its first run and kept.
  // Returns false (outputs untouched) when this shape cannot be planned (shapes that do not
  // match for AddV2): the caller runs it on libtorch.
  bool run(const torch::Tensor& input, std::vector<torch::Tensor>& outputs) const;

 private:
  struct Plan;
  DnnlExecutor(const std::vector<Node>& nodes, const std::vector<int>& order, int input, const std::vector<int>& outputs,
               int64_t batch_declared);
  std::shared_ptr<const Plan> plan_for(const std::array<int64_t, 4>& nhwc) const;

  const std::vector<Node>& nodes_;
  std::vector<int> order_;
  int input_;
  std::vector<int> outputs_;
  int64_t batch_declared_;
  // A convolution -> AddV2 (-> Relu) chain, run as one convolution at its last node; found once
  // by create(), whatever the input shape.
  struct Fused {
    int conv = -1, add = -1, residual = -1;
  };
  std::vector<Fused> fused_;  // by node: set on a chain's last node
  std::vector<bool> inside_;  // the chain's other nodes (they run at its last node)
  mutable std::mutex mutex_;
  mutable std::map<std::array<int64_t, 4>, std::shared_ptr<const Plan>> plans_;  // null: not plannable
};

}  // namespace fervid::tfjs_internal
