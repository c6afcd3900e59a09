#include "fervid/train_step.h"

#include <torch/cuda.h>
#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>

#include <stdexcept>

namespace fervid {

StepResult train_step(MCSANet& net, FerLoss& loss, torch::optim::Optimizer& optimizer, const torch::Tensor& images,
                      const torch::Tensor& labels, const torch::Tensor& soft_targets, MCSANet* teacher) {
  torch::Tensor teacher_logits;
  if (teacher != nullptr && *teacher) {
    torch::NoGradGuard no_grad;
    teacher_logits = (*teacher)->forward(images).logits;
  }
  auto out = net->forward(images);
  auto parts = loss->forward(out.logits, out.embedding, labels, soft_targets, teacher_logits);
  optimizer.zero_grad();
  if (loss->centers.grad().defined()) loss->centers.mutable_grad().zero_();
  parts.total.backward();
  optimizer.step();
  loss->update_centers(out.embedding, labels);
  return {{parts.total.detach(), parts.ce.detach(), parts.center.detach(), parts.separation.detach(),
           parts.distill.detach()},
          out.logits.detach()};
}

torch::Device resolve_device(const std::string& name) {
  if (name == "cpu") return torch::kCPU;
  if (name == "auto") return torch::cuda::is_available() ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  if (name != "cuda" && name.rfind("cuda:", 0) != 0) {
    throw std::invalid_argument("device '" + name + "': expected auto, cpu, cuda or cuda:N");
  }
  if (!torch::cuda::is_available()) {
    throw std::invalid_argument("device '" + name + "': CUDA is not available in this libtorch build/machine");
  }
  int index = 0;
  if (name != "cuda") {
    const std::string digits = name.substr(5);
    if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos || digits.size() > 4) {
      throw std::invalid_argument("device '" + name + "': expected cuda:N with N a device number");
    }
    index = std::stoi(digits);
  }
  const auto count = static_cast<int>(torch::cuda::device_count());
  if (index >= count) {
    throw std::invalid_argument("device '" + name + "': this machine has " + std::to_string(count) + " CUDA device(s)");
  }
  return {torch::kCUDA, static_cast<torch::DeviceIndex>(index)};
}

void move_optimizer_state(torch::optim::Optimizer& optimizer, torch::Device device) {
  auto moved = [&](const torch::Tensor& t) { return t.defined() ? t.to(device) : t; };
  for (auto& entry : optimizer.state()) {
    auto* state = entry.second.get();
    if (auto* sgd = dynamic_cast<torch::optim::SGDParamState*>(state)) {
      sgd->momentum_buffer(moved(sgd->momentum_buffer()));
    } else if (auto* adamw = dynamic_cast<torch::optim::AdamWParamState*>(state)) {
      adamw->exp_avg(moved(adamw->exp_avg()));
      adamw->exp_avg_sq(moved(adamw->exp_avg_sq()));
      adamw->max_exp_avg_sq(moved(adamw->max_exp_avg_sq()));
    } else {
      throw std::logic_error("move_optimizer_state: an optimizer state of unknown type (SGD and AdamW are known)");
    }
  }
}

}  // namespace fervid
