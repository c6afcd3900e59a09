// Synthetic FER2013-format data for the training tests: 7 classes, each a noisy version of its
// own pattern (diagonal bands whose phase and brightness depend on the class), so a network
// can learn them. Torch-free; seeded, so every run writes the same file.
#pragma once

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>

namespace fervid::test {

// `per_class_train` rows of each class in Training, `per_class_test` in PublicTest and in
// PrivateTest (0: none, so a run has no validation split).
inline void write_synthetic_fer2013(const std::filesystem::path& path, int per_class_train, int per_class_test,
                                    unsigned seed = 5) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> noise(0, 30);
  std::ofstream out(path);
  if (!out) throw std::runtime_error("cannot write " + path.string());
  out << "emotion,pixels,Usage\n";
  auto row = [&](int label, const char* usage) {
    out << label << ",";
    for (int p = 0; p < 2304; ++p) {
      const int y = p / 48, x = p % 48;
      const double base = ((x / 8 + y / 8 + label) % 7) * 30.0 + 20 * label;
      out << (p ? " " : "") << std::clamp(static_cast<int>(base + noise(rng)), 0, 255);
    }
    out << "," << usage << "\n";
  };
  for (int i = 0; i < per_class_train; ++i)
    for (int c = 0; c < 7; ++c) row(c, "Training");
  for (int i = 0; i < per_class_test; ++i)
    for (int c = 0; c < 7; ++c) row(c, "PublicTest");
  for (int i = 0; i < per_class_test; ++i)
    for (int c = 0; c < 7; ++c) row(c, "PrivateTest");
}

}  // namespace fervid::test
