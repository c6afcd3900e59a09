// One optimisation step of the combined loss: forward, loss, backward, optimizer step, then the
// center update (losses.h). Shared by the trainer, the tests and the benchmarks.
#pragma once

#include <torch/optim/optimizer.h>

#include "fervid/losses.h"
#include "fervid/model.h"

namespace fervid {

struct StepResult {
  LossParts loss;        // detached scalars
  torch::Tensor logits;  // detached [N, K]
};

// `net` must be in train mode. `soft_targets` may be undefined.
StepResult train_step(MCSANet& net, FerLoss& loss, torch::optim::Optimizer& optimizer, const torch::Tensor& images,
                      const torch::Tensor& labels, const torch::Tensor& soft_targets = {});

}  // namespace fervid
