#include "fervid/plot.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "fervid/atomic_file.h"

namespace fervid {

namespace {

const cv::Scalar kPalette[] = {{180, 119, 31}, {14, 127, 255}, {44, 160, 44}, {40, 39, 214}, {189, 103, 148}, {75, 86, 140}};

void draw_chart(cv::Mat& img, const std::string& title, const std::string& x_label, const std::vector<Series>& series,
                int x_offset) {
  const int w = img.cols, h = img.rows, left = 70, right = 20, top = 40, bottom = 50;
  img.setTo(cv::Scalar(255, 255, 255));
  cv::putText(img, title, cv::Point(left, 25), cv::FONT_HERSHEY_SIMPLEX, 0.6, cv::Scalar(0, 0, 0), 1, cv::LINE_AA);
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  size_t n = 0;
  for (const auto& s : series) {
    for (double v : s.y) {
      if (!std::isfinite(v)) continue;
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
    n = std::max(n, s.y.size());
  }
  if (n == 0 || !std::isfinite(lo)) return;
  if (hi - lo < 1e-9) {
    hi += 0.5;
    lo -= 0.5;
  }
  const double pad = 0.05 * (hi - lo);
  lo -= pad;
  hi += pad;
  const cv::Rect plot(left, top, w - left - right, h - top - bottom);
  cv::rectangle(img, plot, cv::Scalar(0, 0, 0), 1);
  auto px = [&](double x) { return plot.x + (n > 1 ? x / static_cast<double>(n - 1) : 0.5) * plot.width; };
  auto py = [&](double y) { return plot.y + plot.height - (y - lo) / (hi - lo) * plot.height; };
  for (int t = 0; t <= 4; ++t) {  // y ticks
    const double v = lo + (hi - lo) * t / 4.0;
    const int y = static_cast<int>(py(v));
    cv::line(img, {plot.x, y}, {plot.x + plot.width, y}, cv::Scalar(225, 225, 225), 1);
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.3g", v);
    cv::putText(img, buf, cv::Point(5, y + 4), cv::FONT_HERSHEY_SIMPLEX, 0.4, cv::Scalar(60, 60, 60), 1, cv::LINE_AA);
  }
  const size_t step = std::max<size_t>(1, n / 10);
  for (size_t x = 0; x < n; x += step) {  // x ticks
    const int xx = static_cast<int>(px(static_cast<double>(x)));
    cv::putText(img, std::to_string(static_cast<int>(x) + x_offset), cv::Point(xx - 6, plot.y + plot.height + 16),
                cv::FONT_HERSHEY_SIMPLEX, 0.4, cv::Scalar(60, 60, 60), 1, cv::LINE_AA);
  }
  cv::putText(img, x_label, cv::Point(plot.x + plot.width / 2 - 20, h - 10), cv::FONT_HERSHEY_SIMPLEX, 0.45,
              cv::Scalar(0, 0, 0), 1, cv::LINE_AA);
  for (size_t si = 0; si < series.size(); ++si) {
    const auto& s = series[si];
    const auto color = kPalette[static_cast<size_t>(s.color) % std::size(kPalette)];
    std::vector<cv::Point> pts;
    for (size_t x = 0; x < s.y.size(); ++x) {
      if (std::isfinite(s.y[x])) pts.emplace_back(static_cast<int>(px(static_cast<double>(x))), static_cast<int>(py(s.y[x])));
    }
    if (pts.size() > 1) cv::polylines(img, pts, false, color, 2, cv::LINE_AA);
    for (const auto& p : pts) cv::circle(img, p, 2, color, cv::FILLED, cv::LINE_AA);
    const int ly = plot.y + 16 + 18 * static_cast<int>(si);
    cv::line(img, {plot.x + plot.width - 150, ly - 4}, {plot.x + plot.width - 125, ly - 4}, color, 2);
    cv::putText(img, s.name, cv::Point(plot.x + plot.width - 120, ly), cv::FONT_HERSHEY_SIMPLEX, 0.42, cv::Scalar(0, 0, 0), 1,
                cv::LINE_AA);
  }
}

void write_png(const std::string& path, const cv::Mat& img) {
  std::vector<uchar> png;
  if (!cv::imencode(".png", img, png)) throw std::runtime_error("cannot encode PNG for " + path);
  write_file_atomically(path, std::string(png.begin(), png.end()));
}

}  // namespace

void write_line_chart(const std::string& path, const std::string& title, const std::string& x_label,
                      const std::vector<Series>& series, int x_offset) {
  cv::Mat img(420, 640, CV_8UC3);
  draw_chart(img, title, x_label, series, x_offset);
  write_png(path, img);
}

void write_training_curves(const std::string& path, const std::vector<EpochMetrics>& history) {
  Series tl{"train loss", {}, 0}, vl{"val loss", {}, 1}, ta{"train acc", {}, 0}, va{"val acc", {}, 1};
  for (const auto& m : history) {
    tl.y.push_back(m.train_loss);
    vl.y.push_back(m.val_loss);
    ta.y.push_back(m.train_accuracy);
    va.y.push_back(m.val_accuracy);
  }
  cv::Mat img(420, 1280, CV_8UC3);
  cv::Mat a = img(cv::Rect(0, 0, 640, 420)), b = img(cv::Rect(640, 0, 640, 420));
  draw_chart(a, "loss", "epoch", {tl, vl}, 1);
  draw_chart(b, "accuracy", "epoch", {ta, va}, 1);
  write_png(path, img);
}

}  // namespace fervid
