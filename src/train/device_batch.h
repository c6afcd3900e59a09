// Batches finished on an accelerator. For a non-CPU device the loader hands over each batch at
// the dataset's own size as [0, 1] gray levels (no augmentation, identity normalisation), and
// the resize to the model's input, the augmentation and the normalisation run on the device:
// the CPU only gathers bytes, so it does not starve the GPU. CPU runs keep the loader's path.
#pragma once

#include <torch/nn/functional.h>

#include "fervid/augment.h"
#include "fervid/dataset.h"
#include "fervid/loader.h"

namespace fervid::detail {

// Options that make the loader deliver unit floats at the data's own side (square data only;
// other data is resized by the loader as before).
inline void defer_to_device(LoaderOptions& lo, const Dataset& data) {
  lo.augment = AugmentOptions::none();
  if (data.height == data.width) lo.input_size = data.height;
  lo.norm_mean = 0.0;  // (x - 0) / 1: exactly the unit floats
  lo.norm_std = 1.0;
}

// Unit floats [N, 1, h, w] (any device) -> on `device`: resized to `size` (bilinear, as
// to_unit_float), augmented with `gen` when `augment` is given, normalised.
inline torch::Tensor finish_on_device(const torch::Tensor& unit, torch::Device device, int size,
                                      const AugmentOptions* augment, at::Generator* gen, double mean, double std) {
  namespace F = torch::nn::functional;
  auto x = unit.to(device, /*non_blocking=*/true);
  if (x.size(2) != size || x.size(3) != size) {
    x = F::interpolate(x, F::InterpolateFuncOptions()
                              .size(std::vector<int64_t>{size, size})
                              .mode(torch::kBilinear)
                              .align_corners(false));
  }
  if (augment != nullptr && augment->enabled()) x = fervid::augment(x, *augment, *gen);
  return normalize(x, mean, std);
}

}  // namespace fervid::detail
