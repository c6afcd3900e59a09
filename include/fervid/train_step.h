// One optimisation step of the combined loss: forward, loss, backward, optimizer step, then the
// center update (losses.h). Shared by the trainer, the tests and the benchmarks.
#pragma once

#include <torch/optim/optimizer.h>

#include <string>

#include "fervid/losses.h"
#include "fervid/model.h"

namespace fervid {

struct StepResult {
  LossParts loss;        // detached scalars
  torch::Tensor logits;  // detached [N, K]
};

// `net` must be in train mode; `images`, `labels` (and `soft_targets`, which may be undefined)
// on the device of `net` and `loss`. `teacher` (may be null): a network in eval mode on the
// same device whose logits on the same images the loss distils (loss config distill_weight).
StepResult train_step(MCSANet& net, FerLoss& loss, torch::optim::Optimizer& optimizer, const torch::Tensor& images,
                      const torch::Tensor& labels, const torch::Tensor& soft_targets = {},
                      MCSANet* teacher = nullptr);

// "cpu", "cuda", "cuda:N" or "auto" (cuda when torch::cuda::is_available(), else cpu) -> a device.
// Throws std::invalid_argument naming the value for an unknown name, and for cuda when this
// libtorch build or machine has no CUDA device ("CUDA is not available ...").
torch::Device resolve_device(const std::string& name);

// Moves an SGD or AdamW optimizer's per-parameter state (momentum, moments) to `device`; the
// parameters themselves move with their module (Module::to keeps their identity, and so the
// optimizer's references to them).
void move_optimizer_state(torch::optim::Optimizer& optimizer, torch::Device device);

}  // namespace fervid
