// The MCSA-VGGNet family (design.md section 2), as libtorch modules.
//
// Input:  float NCHW, C = config.in_channels (1, grayscale), H = W = config.input_size,
//         already normalised ((gray/255 - norm_mean) / norm_std).
// Output: NetOutput{logits [N, num_classes] (no softmax), embedding [N, embedding_dim]}.
// Inference needs model->eval() and a torch::NoGradGuard (or InferenceMode): in train mode,
// BatchNorm uses batch statistics and dropout is active.
//
// This header pulls in libtorch's nn headers: include it only where a network is built or run.
#pragma once

#include <torch/nn.h>

#include <string>

#include "fervid/config.h"

namespace fervid {

namespace detail {
struct Trace;  // per-layer recorder used by summarize(); see src/nn/trace.h
}

struct NetOutput {
  torch::Tensor logits;     // [N, K]
  torch::Tensor embedding;  // [N, D], the globally average-pooled features
};

// KxK convolution (no bias) + BatchNorm + ReLU, "same" padding, stride 1.
class ConvBnReluImpl : public torch::nn::Module {
 public:
  ConvBnReluImpl(int in, int out, int kernel);
  torch::Tensor forward(const torch::Tensor& x, detail::Trace* trace = nullptr,
                        const std::string& name = "");
  // Folds the BatchNorm's running statistics and affine parameters into one convolution
  // (w' = w * g / sqrt(v + eps), b' = beta - m * g / sqrt(v + eps)) used by forward() in eval
  // mode. For inference only: the module's parameters are unchanged (files save the same),
  // training mode ignores the folded copy, and later weight changes need another call.
  void fold_batchnorm();
  bool folded() const { return folded_weight_.defined(); }

  torch::nn::Conv2d conv{nullptr};
  torch::nn::BatchNorm2d bn{nullptr};

 private:
  torch::Tensor folded_weight_, folded_bias_;
};
TORCH_MODULE(ConvBnRelu);

// Inception-style multiscale block (the abstract's "Inception architecture as a design
// philosophy"): branches 1x1 | 1x1->3x3 | 1x1->3x3->3x3 (a 5x5 field) | maxpool3x3->1x1,
// concatenated to `out` channels in the ratio 2:4:1:1. `out` must be a multiple of 8.
class InceptionBlockImpl : public torch::nn::Module {
 public:
  InceptionBlockImpl(int in, int out);
  torch::Tensor forward(const torch::Tensor& x, detail::Trace* trace = nullptr,
                        const std::string& name = "");

  ConvBnRelu branch1{nullptr}, branch3_reduce{nullptr}, branch3{nullptr};
  ConvBnRelu branch5_reduce{nullptr}, branch5_a{nullptr}, branch5_b{nullptr};
  ConvBnRelu pool_proj{nullptr};
};
TORCH_MODULE(InceptionBlock);

// SE channel attention (paper 2.9): GAP -> FC(C, C/r) -> ReLU -> FC(C/r, C) -> sigmoid,
// then every channel is scaled by its weight in (0, 1). Shape preserving, [N, C, H, W].
class ChannelAttentionImpl : public torch::nn::Module {
 public:
  ChannelAttentionImpl(int channels, int reduction);
  torch::Tensor forward(const torch::Tensor& x, detail::Trace* trace = nullptr,
                        const std::string& name = "");
  torch::Tensor weights(const torch::Tensor& x);  // [N, C] in (0, 1)

  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(ChannelAttention);

// CBAM-style spatial attention (paper 2.10): channel-wise mean and max -> [N, 2, H, W] ->
// KxK convolution (padding K/2, no bias) -> sigmoid -> every position scaled by its weight.
class SpatialAttentionImpl : public torch::nn::Module {
 public:
  explicit SpatialAttentionImpl(int kernel = 7);
  torch::Tensor forward(const torch::Tensor& x, detail::Trace* trace = nullptr,
                        const std::string& name = "");
  torch::Tensor attention_map(const torch::Tensor& x);  // [N, 1, H, W] in (0, 1)

  torch::nn::Conv2d conv{nullptr};
};
TORCH_MODULE(SpatialAttention);

// Multiscale feature fusion (paper 2.5): F2 and F3 are average-pooled to F5's spatial size,
// concatenated with F5 on channels, and reduced by a 1x1 convolution + BN + ReLU to `out`.
class FeatureFusionImpl : public torch::nn::Module {
 public:
  FeatureFusionImpl(int c2, int c3, int c5, int out);
  torch::Tensor forward(const torch::Tensor& f2, const torch::Tensor& f3,
                        const torch::Tensor& f5, detail::Trace* trace = nullptr,
                        const std::string& name = "");

  ConvBnRelu reduce{nullptr};
};
TORCH_MODULE(FeatureFusion);

// The whole network. Submodules that a variant does not use are not created, so the
// parameter list (and a model file's tensor names) say exactly which parts are present.
class MCSANetImpl : public torch::nn::Module {
 public:
  explicit MCSANetImpl(ModelConfig config);
  NetOutput forward(const torch::Tensor& x, detail::Trace* trace = nullptr);
  const ModelConfig& config() const { return config_; }
  // Folds every conv + BatchNorm pair for inference (ConvBnReluImpl::fold_batchnorm); returns
  // how many were folded. Eval-mode outputs agree with the unfolded network to float rounding.
  int fold_batchnorm();

 private:
  ModelConfig config_;
  // blocks_[b] holds block b's layers; each is a ConvBnRelu or an InceptionBlock.
  std::vector<std::vector<std::shared_ptr<torch::nn::Module>>> blocks_;
  FeatureFusion fusion_{nullptr};
  ChannelAttention channel_attention_{nullptr};
  SpatialAttention spatial_attention_{nullptr};
  torch::nn::Dropout dropout_{nullptr};
  torch::nn::Linear head_{nullptr};
};
TORCH_MODULE(MCSANet);

}  // namespace fervid
