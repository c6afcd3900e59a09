// Pictures people would rather look at than JSON: line charts (training curves), heatmaps
// (confusion matrices). Needs the OpenCV part of the library. PNGs are written atomically.
#pragma once

#include <string>
#include <vector>

#include "fervid/evaluate.h"
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

// Grouped horizontal bars: one group per category (top to bottom), one bar per series, each
// labelled with its value; values of every series share one axis from 0 to the largest.
void write_bar_chart(const std::string& path, const std::string& title, const std::vector<std::string>& categories,
                     const std::vector<Series>& series, int decimals = 3);

// Two panels side by side: loss (train, validation) and accuracy (train, validation) per epoch.
void write_training_curves(const std::string& path, const std::vector<EpochMetrics>& history);

// A confusion-matrix heatmap: rows true classes, columns predictions, each cell shaded by its
// share of the row (recall) and labelled with count and percentage.
void write_confusion_png(const std::string& path, const std::vector<std::vector<int64_t>>& confusion,
                         const std::vector<std::string>& class_names, const std::string& title);

// A reliability diagram: accuracy against confidence per bin, with the diagonal and the ECE.
void write_reliability_png(const std::string& path, const EvalMetrics& m, const std::string& title);

// A 2-D scatter of `points` [N, 2] coloured by `labels` [N], with a legend of class names.
void write_scatter_png(const std::string& path, const torch::Tensor& points, const torch::Tensor& labels,
                       const std::vector<std::string>& class_names, const std::string& title);

}  // namespace fervid
