#include "fervid/train_step.h"

namespace fervid {

StepResult train_step(MCSANet& net, FerLoss& loss, torch::optim::Optimizer& optimizer, const torch::Tensor& images,
                      const torch::Tensor& labels, const torch::Tensor& soft_targets) {
  auto out = net->forward(images);
  auto parts = loss->forward(out.logits, out.embedding, labels, soft_targets);
  optimizer.zero_grad();
  if (loss->centers.grad().defined()) loss->centers.mutable_grad().zero_();
  parts.total.backward();
  optimizer.step();
  loss->update_centers(out.embedding, labels);
  return {{parts.total.detach(), parts.ce.detach(), parts.center.detach(), parts.separation.detach()},
          out.logits.detach()};
}

}  // namespace fervid
