#include "fervid/augment.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/nn/functional.h>

#include <cmath>

namespace fervid {

namespace F = torch::nn::functional;

bool AugmentOptions::enabled() const {
  return flip_prob > 0 || max_rotation_deg > 0 || min_scale != 1 || max_scale != 1 || max_shift > 0 ||
         brightness > 0 || contrast > 0 || erase_prob > 0;
}

AugmentOptions AugmentOptions::none() {
  AugmentOptions o;
  o.flip_prob = 0;
  o.max_rotation_deg = 0;
  o.min_scale = o.max_scale = 1;
  o.max_shift = 0;
  o.brightness = 0;
  o.contrast = 0;
  o.erase_prob = 0;
  return o;
}

at::Generator make_generator(uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

namespace {

// theta maps output coordinates to input coordinates in affine_grid's normalised [-1, 1] space.
torch::Tensor affine_theta(const torch::Tensor& angle_rad, const torch::Tensor& scale, const torch::Tensor& flip,
                           const torch::Tensor& tx, const torch::Tensor& ty) {
  auto c = torch::cos(angle_rad) / scale, s = torch::sin(angle_rad) / scale;
  auto row0 = torch::stack({c * flip, -s, tx}, 1);
  auto row1 = torch::stack({s * flip, c, ty}, 1);
  return torch::stack({row0, row1}, 1);  // [N, 2, 3]
}

torch::Tensor resample(const torch::Tensor& images, const torch::Tensor& theta) {
  auto grid = F::affine_grid(theta.to(images.options()), images.sizes(), /*align_corners=*/false);
  return F::grid_sample(images, grid,
                        F::GridSampleFuncOptions().mode(torch::kBilinear).padding_mode(torch::kBorder).align_corners(false));
}

torch::Tensor uniform(int64_t n, double lo, double hi, at::Generator& gen) {
  return torch::rand({n}, gen, torch::kDouble) * (hi - lo) + lo;
}

}  // namespace

torch::Tensor augment(const torch::Tensor& images, const AugmentOptions& o, at::Generator& gen) {
  TORCH_CHECK(images.dim() == 4 && images.size(1) == 1, "augment: expected [N, 1, H, W], got ", images.sizes());
  TORCH_CHECK(o.min_scale > 0 && o.min_scale <= o.max_scale, "augment: need 0 < min_scale <= max_scale, got ",
              o.min_scale, " and ", o.max_scale);
  TORCH_CHECK(o.erase_min_area > 0 && o.erase_min_area <= o.erase_max_area && o.erase_max_area <= 1,
              "augment: need 0 < erase_min_area <= erase_max_area <= 1, got ", o.erase_min_area, " and ",
              o.erase_max_area);
  TORCH_CHECK(o.erase_value <= 1, "augment: erase_value must be <= 1 (< 0: the image's mean), got ", o.erase_value);
  const int64_t n = images.size(0);
  if (n == 0 || !o.enabled()) return images;
  // Draw every random number on the CPU, in a fixed order, whatever the device.
  const double kPi = 3.14159265358979323846;
  auto flip = torch::where(torch::rand({n}, gen, torch::kDouble) < o.flip_prob, -1.0, 1.0).to(torch::kDouble);
  auto angle = uniform(n, -o.max_rotation_deg, o.max_rotation_deg, gen) * (kPi / 180.0);
  auto scale = uniform(n, o.min_scale, o.max_scale, gen);
  auto tx = uniform(n, -2 * o.max_shift, 2 * o.max_shift, gen);  // normalised units: side = 2
  auto ty = uniform(n, -2 * o.max_shift, 2 * o.max_shift, gen);
  auto bright = uniform(n, -o.brightness, o.brightness, gen);
  auto contrast = uniform(n, 1 - o.contrast, 1 + o.contrast, gen);
  auto erase = torch::rand({n}, gen, torch::kDouble) < o.erase_prob;
  auto area = uniform(n, o.erase_min_area, o.erase_max_area, gen);
  auto aspect = torch::exp(uniform(n, std::log(0.3), std::log(3.3), gen));
  auto ex = torch::rand({n}, gen, torch::kDouble), ey = torch::rand({n}, gen, torch::kDouble);

  auto out = resample(images, affine_theta(angle, scale, flip, tx, ty));
  auto opts = images.options();
  auto mean = out.mean({1, 2, 3}, /*keepdim=*/true);
  out = (out - mean) * contrast.to(opts).view({n, 1, 1, 1}) + mean + bright.to(opts).view({n, 1, 1, 1});
  if (o.erase_prob > 0) {
    const int64_t h = images.size(2), w = images.size(3);
    // Whole rows, then whole columns for the drawn area: erased pixels = eh * ew, off the drawn
    // area * h * w by at most eh / 2 (unless a side is clamped to the image).
    auto eh = (torch::sqrt(area * aspect) * h).round().clamp(1, h);
    auto ew = (area * static_cast<double>(h * w) / eh).round().clamp(1, w);
    auto y0 = (ey * (h - eh)).floor(), x0 = (ex * (w - ew)).floor();
    auto rows = torch::arange(h, torch::kDouble).view({1, h, 1});
    auto cols = torch::arange(w, torch::kDouble).view({1, 1, w});
    auto inside = (rows >= y0.view({n, 1, 1})) & (rows < (y0 + eh).view({n, 1, 1})) &
                  (cols >= x0.view({n, 1, 1})) & (cols < (x0 + ew).view({n, 1, 1})) & erase.view({n, 1, 1});
    // By default erased pixels take the image's mean gray, so erasing hides content without
    // adding edges brighter or darker than the face.
    const auto fill = o.erase_value < 0 ? mean.expand_as(out) : torch::full_like(out, o.erase_value);
    out = torch::where(inside.unsqueeze(1).to(images.device()), fill, out);
  }
  return out.clamp(0, 1);
}

torch::Tensor expand_15x(const torch::Tensor& images) {
  TORCH_CHECK(images.dim() == 4 && images.size(1) == 1, "expand_15x: expected [N, 1, H, W], got ", images.sizes());
  const int64_t n = images.size(0);
  const double kPi = 3.14159265358979323846;
  std::vector<double> angle, scale, flip;
  for (int base = 0; base < 3; ++base) {  // image, mirror, 1.1x zoom
    for (double deg : {0.0, -10.0, -5.0, 5.0, 10.0}) {
      angle.push_back(deg * kPi / 180.0);
      scale.push_back(base == 2 ? 1.1 : 1.0);
      flip.push_back(base == 1 ? -1.0 : 1.0);
    }
  }
  auto k = static_cast<int64_t>(angle.size());
  auto theta = affine_theta(torch::tensor(angle, torch::kDouble), torch::tensor(scale, torch::kDouble),
                            torch::tensor(flip, torch::kDouble), torch::zeros({k}, torch::kDouble),
                            torch::zeros({k}, torch::kDouble));
  auto rep = images.repeat_interleave(k, 0);  // rows 15 i .. 15 i + 14 are image i
  auto out = resample(rep, theta.repeat({n, 1, 1}));
  // Variant 0 is the identity: return the exact pixels rather than a resampled copy.
  out.index_put_({torch::arange(n) * k}, images);
  return out;
}

torch::Tensor to_unit_float(const torch::Tensor& gray_u8, int size) {
  TORCH_CHECK(gray_u8.scalar_type() == torch::kByte, "to_unit_float: expected uint8 gray levels");
  auto x = gray_u8.dim() == 3 ? gray_u8.unsqueeze(1) : gray_u8;
  TORCH_CHECK(x.dim() == 4 && x.size(1) == 1, "to_unit_float: expected [N, H, W] or [N, 1, H, W], got ", gray_u8.sizes());
  auto f = x.to(torch::kFloat).div_(255.0f);
  if (f.size(2) != size || f.size(3) != size) {
    f = F::interpolate(f, F::InterpolateFuncOptions()
                              .size(std::vector<int64_t>{size, size})
                              .mode(torch::kBilinear)
                              .align_corners(false));
  }
  return f;
}

torch::Tensor normalize(const torch::Tensor& unit, double mean, double std) {
  TORCH_CHECK(std > 0, "normalize: std must be > 0, got ", std);
  return (unit - mean) / std;
}

}  // namespace fervid
