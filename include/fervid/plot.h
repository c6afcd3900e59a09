// Pictures people would rather look at than JSON: line charts (training curves), heatmaps
// (confusion matrices). Needs the OpenCV part of the library. PNGs are written atomically.
#pragma once

#include <string>
#include <vector>

#include "fervid/trainer.h"

namespace fervid {

struct Series {
  std::string name;
  std::vector<double> y;  // one value per x = 0, 1, 2, ...
  int color = 0;          // index into a fixed palette
};

// A PNG line chart of `series` against their index (first x shown as `x_offset`).
void write_line_chart(const std::string& path, const std::string& title, const std::string& x_label,
                      const std::vector<Series>& series, int x_offset = 1);

// Two panels side by side: loss (train, validation) and accuracy (train, validation) per epoch.
void write_training_curves(const std::string& path, const std::vector<EpochMetrics>& history);

}  // namespace fervid
