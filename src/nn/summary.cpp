#include "fervid/summary.h"

#include "fervid/model.h"
#include "trace.h"

namespace fervid {

ModelSummary summarize(const ModelConfig& config) {
  torch::NoGradGuard no_grad;
  MCSANet net(config);
  net->eval();
  detail::Trace trace;
  net->forward(torch::zeros({1, config.in_channels, config.input_size, config.input_size}), &trace);

  ModelSummary s;
  s.config = config;
  s.layers = std::move(trace.rows);
  for (const auto& row : s.layers) {
    s.total_macs += row.macs;
    if (row.name.rfind("block", 0) == 0 && row.kind.rfind("conv", 0) == 0) {
      s.backbone_conv_params += row.kernel_params;
      s.backbone_conv_macs += row.macs;
    }
  }
  // Totals come from the module itself, so a layer the trace misses cannot hide parameters.
  for (const auto& p : net->parameters()) s.total_params += p.numel();
  for (const auto& b : net->buffers()) s.buffers += b.numel();
  return s;
}

}  // namespace fervid
