// Data augmentation as tensor operations (design.md section 4): flip, rotation, scale and
// shift in one affine resampling, brightness and contrast, optional random erasing. Runs on
// whatever device the batch is on (no OpenCV); one seed gives one result.
#pragma once

#include <ATen/core/Generator.h>
#include <torch/types.h>

#include <cstdint>

namespace fervid {

struct AugmentOptions {
  double flip_prob = 0.5;         // horizontal mirror
  double max_rotation_deg = 10;   // uniform in [-max, +max] (paper 2.7.2: about +/-10 degrees)
  double min_scale = 0.9, max_scale = 1.1;  // zoom (> 1 magnifies)
  double max_shift = 0.08;        // fraction of the side, each axis
  double brightness = 0.15;       // additive, uniform in [-b, b], on gray levels in [0, 1]
  double contrast = 0.2;          // factor uniform in [1 - c, 1 + c] about each image's mean
  double erase_prob = 0.0;        // random erasing (Zhong et al.): probability per image
  // One rectangle per erased image, of whole pixels: area fraction uniform in [min, max]
  // (rounded to whole rows and columns: within half a column of the drawn area), aspect
  // (height / width, relative to the image's) log-uniform in [0.3, 3.3], placed uniformly inside.
  double erase_min_area = 0.02, erase_max_area = 0.2;
  // The erased pixels' gray level in [0, 1]; < 0: each image's mean gray after the geometric
  // transform, before brightness and contrast (hides content without adding edges).
  double erase_value = -1.0;
  bool enabled() const;
  static AugmentOptions none();   // identity
};

// Gray images in [0, 1], float [N, 1, H, W] -> augmented, same shape, device and dtype,
// clamped to [0, 1]. Random draws come from `gen` (a CPU generator), so the result depends only
// on its state, not on the device or on threads.
torch::Tensor augment(const torch::Tensor& images, const AugmentOptions& options, at::Generator& gen);

// A CPU generator seeded with `seed` (for augment()).
at::Generator make_generator(uint64_t seed);

// The paper's offline 15x expansion (paper 2.7.2, as we read it): each image, its mirror and a
// 1.1x zoom, each at rotations -10, -5, 0, +5, +10 degrees. [N, 1, H, W] -> [15 N, 1, H, W],
// the 15 variants of image i at rows 15 i .. 15 i + 14; variant 0 is the image itself.
torch::Tensor expand_15x(const torch::Tensor& images);

// uint8 gray [N, H, W] (or [N, 1, H, W]) -> float [N, 1, S, S] in [0, 1], bilinearly resized
// to S = `size` when it differs. The step shared by every path into the network.
torch::Tensor to_unit_float(const torch::Tensor& gray_u8, int size);
// (x - mean) / std on [0, 1] images: the model's input normalisation (ModelConfig::norm_*).
torch::Tensor normalize(const torch::Tensor& unit, double mean, double std);

}  // namespace fervid
