// Shared test helpers: a seeded fixture and a double-precision central-difference gradient check.
#pragma once

#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/nn.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <functional>
#include <random>
#include <vector>

#include <unistd.h>

#include "data_dir.h"

namespace fervid::test {

// Every test starts from the same generator state (ncnn-style), so failures reproduce.
class Seeded : public ::testing::Test {
 protected:
  void SetUp() override { torch::manual_seed(20261129); }
};

// A fresh folder per test under the system's temp dir, removed afterwards; seeded like Seeded.
class TempDirTest : public Seeded {
 protected:
  void SetUp() override {
    Seeded::SetUp();
    dir_ = std::filesystem::temp_directory_path() /
           ("fervid_" + std::to_string(::getpid()) + "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  std::filesystem::path dir_;
};

// Compares autograd's gradient of the scalar `f()` with respect to each of `inputs` (double,
// requires_grad) with central differences (f(x + h) - f(x - h)) / 2h, element by element
// (at most `max_checks` randomly chosen elements per input). Also checks every analytic
// gradient is finite. Tolerance: |a - n| <= atol + rtol * max(|a|, |n|).
inline void expect_gradients_match(const std::function<torch::Tensor()>& f,
                                   const std::vector<torch::Tensor>& inputs, double h = 1e-6,
                                   double rtol = 1e-4, double atol = 1e-7, int max_checks = 60) {
  for (const auto& x : inputs) {
    ASSERT_EQ(x.scalar_type(), torch::kDouble) << "gradient checks run in double precision";
    ASSERT_TRUE(x.requires_grad());
    ASSERT_TRUE(x.is_contiguous());
  }
  auto y = f();
  ASSERT_EQ(y.numel(), 1);
  auto grads = torch::autograd::grad({y}, inputs, {}, /*retain_graph=*/false,
                                     /*create_graph=*/false, /*allow_unused=*/true);
  std::mt19937 rng(7);
  for (size_t i = 0; i < inputs.size(); ++i) {
    auto analytic = grads[i].defined() ? grads[i] : torch::zeros_like(inputs[i]);
    ASSERT_TRUE(torch::isfinite(analytic).all().item<bool>()) << "non-finite gradient, input " << i;
    auto flat = analytic.reshape({-1});
    double* data = inputs[i].data_ptr<double>();
    const int64_t n = inputs[i].numel();
    std::vector<int64_t> idx(static_cast<size_t>(n));
    for (int64_t k = 0; k < n; ++k) idx[static_cast<size_t>(k)] = k;
    std::shuffle(idx.begin(), idx.end(), rng);
    idx.resize(static_cast<size_t>(std::min<int64_t>(n, max_checks)));
    torch::NoGradGuard no_grad;
    for (int64_t k : idx) {
      const double orig = data[k];
      data[k] = orig + h;
      const double fp = f().item<double>();
      data[k] = orig - h;
      const double fm = f().item<double>();
      data[k] = orig;
      const double numeric = (fp - fm) / (2 * h);
      const double a = flat[k].item<double>();
      EXPECT_LE(std::abs(a - numeric), atol + rtol * std::max(std::abs(a), std::abs(numeric)))
          << "input " << i << " element " << k << ": autograd " << a << ", numeric " << numeric;
    }
  }
}

// All parameters of a module, in double, as gradient-check inputs.
inline std::vector<torch::Tensor> params_of(torch::nn::Module& m) {
  std::vector<torch::Tensor> out;
  for (auto& p : m.parameters()) out.push_back(p);
  return out;
}

}  // namespace fervid::test
