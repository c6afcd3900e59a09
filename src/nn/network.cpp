#include "fervid/model.h"
#include "trace.h"

namespace fervid {

using detail::join;
using detail::Trace;

// ---------------------------------------------------------------------------------------------
ConvBnReluImpl::ConvBnReluImpl(int in, int out, int kernel) {
  conv = register_module(
      "conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, kernel).padding(kernel / 2).bias(false)));
  bn = register_module("bn", torch::nn::BatchNorm2d(out));
  // He initialisation for ReLU networks, as torchvision's VGG.
  torch::nn::init::kaiming_normal_(conv->weight, 0.0, torch::kFanOut, torch::kReLU);
}

torch::Tensor ConvBnReluImpl::forward(const torch::Tensor& x, Trace* trace,
                                      const std::string& name) {
  if (folded_weight_.defined() && !is_training() && trace == nullptr) {
    const int64_t pad = folded_weight_.size(2) / 2;  // "same" padding, as the constructor sets
    auto y = torch::conv2d(x, folded_weight_, folded_bias_, 1, pad);
    return y.relu_();
  }
  auto y = conv(x);
  if (trace) trace->conv(join(name, "conv"), conv, y);
  y = bn(y);
  if (trace) trace->elementwise(join(name, "bn"), "bn", y, 2 * y.size(1), y.numel());
  return torch::relu(y);
}

void ConvBnReluImpl::fold_batchnorm() {
  torch::NoGradGuard no_grad;
  const auto scale = bn->weight / torch::sqrt(bn->running_var + bn->options.eps());
  folded_weight_ = (conv->weight * scale.view({-1, 1, 1, 1})).contiguous();
  folded_bias_ = (bn->bias - bn->running_mean * scale).contiguous();
}

// ---------------------------------------------------------------------------------------------
InceptionBlockImpl::InceptionBlockImpl(int in, int out) {
  TORCH_CHECK(out % 8 == 0, "InceptionBlock: out channels must be a multiple of 8, got ", out);
  const int c1 = out / 4, c3 = out / 2, c5 = out / 8, cp = out / 8;
  branch1 = register_module("branch1", ConvBnRelu(in, c1, 1));
  branch3_reduce = register_module("branch3_reduce", ConvBnRelu(in, c3 / 2, 1));
  branch3 = register_module("branch3", ConvBnRelu(c3 / 2, c3, 3));
  branch5_reduce = register_module("branch5_reduce", ConvBnRelu(in, c5, 1));
  branch5_a = register_module("branch5_a", ConvBnRelu(c5, c5, 3));
  branch5_b = register_module("branch5_b", ConvBnRelu(c5, c5, 3));
  pool_proj = register_module("pool_proj", ConvBnRelu(in, cp, 1));
}

torch::Tensor InceptionBlockImpl::forward(const torch::Tensor& x, Trace* trace,
                                          const std::string& name) {
  auto b1 = branch1->forward(x, trace, join(name, "branch1"));
  auto b3 = branch3->forward(branch3_reduce->forward(x, trace, join(name, "branch3_reduce")), trace,
                             join(name, "branch3"));
  auto b5 = branch5_reduce->forward(x, trace, join(name, "branch5_reduce"));
  b5 = branch5_b->forward(branch5_a->forward(b5, trace, join(name, "branch5_a")), trace,
                          join(name, "branch5_b"));
  auto pooled = torch::max_pool2d(x, {3, 3}, {1, 1}, {1, 1});
  if (trace) trace->elementwise(join(name, "pool"), "maxpool3x3", pooled, 0, 0);
  auto bp = pool_proj->forward(pooled, trace, join(name, "pool_proj"));
  auto y = torch::cat({b1, b3, b5, bp}, 1);
  if (trace) trace->elementwise(join(name, "concat"), "concat", y, 0, 0);
  return y;
}

// ---------------------------------------------------------------------------------------------
ChannelAttentionImpl::ChannelAttentionImpl(int channels, int reduction) {
  const int hidden = std::max(1, channels / reduction);
  fc1 = register_module("fc1", torch::nn::Linear(channels, hidden));
  fc2 = register_module("fc2", torch::nn::Linear(hidden, channels));
}

torch::Tensor ChannelAttentionImpl::weights(const torch::Tensor& x) {
  TORCH_CHECK(x.dim() == 4, "ChannelAttention: expected NCHW, got ", x.sizes());
  return torch::sigmoid(fc2(torch::relu(fc1(x.mean({2, 3})))));
}

torch::Tensor ChannelAttentionImpl::forward(const torch::Tensor& x, Trace* trace,
                                            const std::string& name) {
  auto w = weights(x);
  auto y = x * w.unsqueeze(-1).unsqueeze(-1);
  if (trace) {
    trace->elementwise(join(name, "squeeze"), "gap", w, 0, x.numel());
    trace->linear(join(name, "fc1"), fc1, torch::empty({1, fc1->weight.size(0)}));
    trace->linear(join(name, "fc2"), fc2, w);
    trace->elementwise(join(name, "scale"), "scale", y, 0, y.numel());
  }
  return y;
}

// ---------------------------------------------------------------------------------------------
SpatialAttentionImpl::SpatialAttentionImpl(int kernel) {
  conv = register_module(
      "conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(2, 1, kernel).padding(kernel / 2).bias(false)));
}

torch::Tensor SpatialAttentionImpl::attention_map(const torch::Tensor& x) {
  TORCH_CHECK(x.dim() == 4, "SpatialAttention: expected NCHW, got ", x.sizes());
  auto pooled = torch::cat({x.mean(1, /*keepdim=*/true), std::get<0>(x.max(1, /*keepdim=*/true))}, 1);
  return torch::sigmoid(conv(pooled));
}

torch::Tensor SpatialAttentionImpl::forward(const torch::Tensor& x, Trace* trace,
                                            const std::string& name) {
  auto a = attention_map(x);
  auto y = x * a;
  if (trace) {
    trace->elementwise(join(name, "pool"), "chan-mean+max", a, 0, x.numel());
    trace->conv(join(name, "conv"), conv, a);
    trace->elementwise(join(name, "scale"), "scale", y, 0, y.numel());
  }
  return y;
}

// ---------------------------------------------------------------------------------------------
FeatureFusionImpl::FeatureFusionImpl(int c2, int c3, int c5, int out) {
  reduce = register_module("reduce", ConvBnRelu(c2 + c3 + c5, out, 1));
}

torch::Tensor FeatureFusionImpl::forward(const torch::Tensor& f2, const torch::Tensor& f3,
                                         const torch::Tensor& f5, Trace* trace,
                                         const std::string& name) {
  TORCH_CHECK(f2.dim() == 4 && f3.dim() == 4 && f5.dim() == 4, "FeatureFusion: expected NCHW maps");
  const std::vector<int64_t> size = {f5.size(2), f5.size(3)};
  auto p2 = torch::adaptive_avg_pool2d(f2, size);
  auto p3 = torch::adaptive_avg_pool2d(f3, size);
  if (trace) {
    trace->elementwise(join(name, "pool_f2"), "avgpool", p2, 0, f2.numel());
    trace->elementwise(join(name, "pool_f3"), "avgpool", p3, 0, f3.numel());
  }
  auto cat = torch::cat({p2, p3, f5}, 1);
  if (trace) trace->elementwise(join(name, "concat"), "concat", cat, 0, 0);
  return reduce->forward(cat, trace, join(name, "reduce"));
}

// ---------------------------------------------------------------------------------------------
namespace {
constexpr int kLayersPerBlock[5] = {2, 2, 3, 3, 3};
}

MCSANetImpl::MCSANetImpl(ModelConfig config) : config_(std::move(config)) {
  config_.validate();
  const auto ch = config_.block_channels();
  int in = config_.in_channels;
  blocks_.resize(5);
  for (int b = 0; b < 5; ++b) {
    for (int l = 0; l < kLayersPerBlock[b]; ++l) {
      const std::string name = "block" + std::to_string(b + 1) + "_conv" + std::to_string(l + 1);
      const bool inception = config_.uses_multiscale() && b >= 2 && l == kLayersPerBlock[b] - 1;
      if (inception) {
        blocks_[b].push_back(register_module(name, InceptionBlock(in, ch[b]).ptr()));
      } else {
        blocks_[b].push_back(register_module(name, ConvBnRelu(in, ch[b], 3).ptr()));
      }
      in = ch[b];
    }
  }
  const int dim = config_.embedding_dim();
  if (has_fusion(config_.variant)) {
    fusion_ = register_module("fusion", FeatureFusion(ch[1], ch[2], ch[4], dim));
  }
  if (has_channel_attention(config_.variant)) {
    channel_attention_ = register_module("channel_attention", ChannelAttention(dim, config_.se_reduction));
  }
  if (has_spatial_attention(config_.variant)) {
    spatial_attention_ = register_module("spatial_attention", SpatialAttention(config_.spatial_kernel));
  }
  dropout_ = register_module("dropout", torch::nn::Dropout(config_.dropout));
  head_ = register_module("head", torch::nn::Linear(dim, config_.num_classes()));
  torch::nn::init::normal_(head_->weight, 0.0, 0.01);
  torch::nn::init::zeros_(head_->bias);
}

NetOutput MCSANetImpl::forward(const torch::Tensor& x, Trace* trace) {
  TORCH_CHECK(x.dim() == 4 && x.size(1) == config_.in_channels &&
                  x.size(2) == config_.input_size && x.size(3) == config_.input_size,
              "MCSANet: expected input [N, ", config_.in_channels, ", ", config_.input_size, ", ",
              config_.input_size, "], got ", x.sizes());
  torch::Tensor h = x, f2, f3;
  for (size_t b = 0; b < blocks_.size(); ++b) {
    for (size_t l = 0; l < blocks_[b].size(); ++l) {
      const std::string name = "block" + std::to_string(b + 1) + "_conv" + std::to_string(l + 1);
      auto& m = blocks_[b][l];
      if (auto* plain = m->as<ConvBnReluImpl>()) {
        h = plain->forward(h, trace, name);
      } else {
        h = m->as<InceptionBlockImpl>()->forward(h, trace, name);
      }
    }
    if (b == 1) f2 = h;  // paper 2.5: conv2 and conv3 maps before their pooling layers
    if (b == 2) f3 = h;
    if (b < 4) {  // pooling between blocks; block 5's map (H/16) goes straight on
      h = torch::max_pool2d(h, {2, 2}, {2, 2});
      if (trace) trace->elementwise("pool" + std::to_string(b + 1), "maxpool2x2", h, 0, 0);
    }
  }
  if (fusion_) h = fusion_->forward(f2, f3, h, trace, "fusion");
  if (channel_attention_) h = channel_attention_->forward(h, trace, "channel_attention");
  if (spatial_attention_) h = spatial_attention_->forward(h, trace, "spatial_attention");
  auto embedding = h.mean({2, 3});
  if (trace) trace->elementwise("gap", "gap", embedding, 0, h.numel());
  auto logits = head_(dropout_(embedding));
  if (trace) trace->linear("head", head_, logits);
  return {logits, embedding};
}

int MCSANetImpl::fold_batchnorm() {
  int n = 0;
  for (const auto& m : modules(/*include_self=*/false)) {
    if (auto* c = m->as<ConvBnReluImpl>()) {
      c->fold_batchnorm();
      ++n;
    }
  }
  return n;
}

}  // namespace fervid
