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

const cv::Scalar kPalette[] = {{180, 119, 31}, {14, 127, 255}, {44, 160, 44}, {40, 39, 214}, {189, 103, 148}, {75, 86, 140}, {127, 127, 127}};

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

void write_bar_chart(const std::string& path, const std::string& title, const std::vector<std::string>& categories,
                     const std::vector<Series>& series, int decimals) {
  const int bar = 16, gap = 14, left = 190, right = 80, top = 50;
  const int n = static_cast<int>(categories.size()), m = static_cast<int>(series.size());
  const int group = m * bar + gap, width = 900;
  cv::Mat img(top + n * group + 30, width, CV_8UC3, cv::Scalar(255, 255, 255));
  cv::putText(img, title, cv::Point(10, 22), cv::FONT_HERSHEY_SIMPLEX, 0.55, cv::Scalar(0, 0, 0), 1, cv::LINE_AA);
  double hi = 0;
  for (const auto& s : series)
    for (double v : s.y)
      if (std::isfinite(v)) hi = std::max(hi, v);
  if (hi <= 0) hi = 1;
  const int plot_w = width - left - right;
  for (int j = 0; j < m; ++j) {  // legend
    const auto& c = kPalette[static_cast<size_t>(series[static_cast<size_t>(j)].color) % 7];
    cv::rectangle(img, cv::Rect(left + j * 170, 32, 12, 12), c, cv::FILLED);
    cv::putText(img, series[static_cast<size_t>(j)].name, cv::Point(left + j * 170 + 16, 43), cv::FONT_HERSHEY_SIMPLEX, 0.42,
                cv::Scalar(0, 0, 0), 1, cv::LINE_AA);
  }
  for (int i = 0; i < n; ++i) {
    const int y0 = top + i * group;
    cv::putText(img, categories[static_cast<size_t>(i)], cv::Point(8, y0 + m * bar / 2 + 5), cv::FONT_HERSHEY_SIMPLEX, 0.45,
                cv::Scalar(0, 0, 0), 1, cv::LINE_AA);
    for (int j = 0; j < m; ++j) {
      const auto& s = series[static_cast<size_t>(j)];
      if (static_cast<size_t>(i) >= s.y.size() || !std::isfinite(s.y[static_cast<size_t>(i)])) continue;
      const double v = s.y[static_cast<size_t>(i)];
      const int w = std::max(1, static_cast<int>(std::lround(std::max(0.0, v) / hi * plot_w)));
      const cv::Rect r(left, y0 + j * bar, w, bar - 2);
      cv::rectangle(img, r, kPalette[static_cast<size_t>(s.color) % 7], cv::FILLED);
      char buf[32];
      std::snprintf(buf, sizeof(buf), "%.*f", decimals, v);
      cv::putText(img, buf, cv::Point(r.x + w + 4, r.y + bar - 5), cv::FONT_HERSHEY_SIMPLEX, 0.4, cv::Scalar(40, 40, 40), 1, cv::LINE_AA);
    }
  }
  cv::line(img, {left, top - 4}, {left, top + n * group}, cv::Scalar(0, 0, 0), 1);
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

void write_confusion_png(const std::string& path, const std::vector<std::vector<int64_t>>& confusion,
                         const std::vector<std::string>& names, const std::string& title) {
  const int k = static_cast<int>(confusion.size()), cell = 72, left = 100, top = 70;
  cv::Mat img(top + k * cell + 40, left + k * cell + 20, CV_8UC3, cv::Scalar(255, 255, 255));
  cv::putText(img, title, cv::Point(10, 22), cv::FONT_HERSHEY_SIMPLEX, 0.55, cv::Scalar(0, 0, 0), 1, cv::LINE_AA);
  cv::putText(img, "predicted", cv::Point(left + k * cell / 2 - 30, 42), cv::FONT_HERSHEY_SIMPLEX, 0.45, cv::Scalar(0, 0, 0), 1, cv::LINE_AA);
  for (int i = 0; i < k; ++i) {
    int64_t row = 0;
    for (int j = 0; j < k; ++j) row += confusion[static_cast<size_t>(i)][static_cast<size_t>(j)];
    const std::string name = i < static_cast<int>(names.size()) ? names[static_cast<size_t>(i)] : std::to_string(i);
    cv::putText(img, name, cv::Point(8, top + i * cell + cell / 2 + 5), cv::FONT_HERSHEY_SIMPLEX, 0.45, cv::Scalar(0, 0, 0), 1, cv::LINE_AA);
    cv::putText(img, name.substr(0, 8), cv::Point(left + i * cell + 4, top - 8), cv::FONT_HERSHEY_SIMPLEX, 0.4, cv::Scalar(0, 0, 0), 1, cv::LINE_AA);
    for (int j = 0; j < k; ++j) {
      const auto n = confusion[static_cast<size_t>(i)][static_cast<size_t>(j)];
      const double share = row ? static_cast<double>(n) / static_cast<double>(row) : 0;
      const cv::Scalar shade(255 - 200 * share, 255 - 120 * share, 255 - 20 * share);  // white -> orange (BGR)
      const cv::Rect r(left + j * cell, top + i * cell, cell, cell);
      cv::rectangle(img, r, shade, cv::FILLED);
      cv::rectangle(img, r, cv::Scalar(200, 200, 200), 1);
      const cv::Scalar ink = share > 0.55 ? cv::Scalar(255, 255, 255) : cv::Scalar(0, 0, 0);
      cv::putText(img, std::to_string(n), cv::Point(r.x + 6, r.y + 30), cv::FONT_HERSHEY_SIMPLEX, 0.5, ink, 1, cv::LINE_AA);
      char pct[16];
      std::snprintf(pct, sizeof(pct), "%.0f%%", 100 * share);
      cv::putText(img, pct, cv::Point(r.x + 6, r.y + 54), cv::FONT_HERSHEY_SIMPLEX, 0.42, ink, 1, cv::LINE_AA);
    }
  }
  write_png(path, img);
}

void write_reliability_png(const std::string& path, const EvalMetrics& m, const std::string& title) {
  const int size = 420, left = 60, top = 40, plot = 320;
  cv::Mat img(size + 20, size + 40, CV_8UC3, cv::Scalar(255, 255, 255));
  char buf[96];
  std::snprintf(buf, sizeof(buf), "%s (ECE %.3f)", title.c_str(), m.ece);
  cv::putText(img, buf, cv::Point(10, 22), cv::FONT_HERSHEY_SIMPLEX, 0.5, cv::Scalar(0, 0, 0), 1, cv::LINE_AA);
  cv::rectangle(img, cv::Rect(left, top, plot, plot), cv::Scalar(0, 0, 0), 1);
  cv::line(img, {left, top + plot}, {left + plot, top}, cv::Scalar(160, 160, 160), 1, cv::LINE_AA);
  for (const auto& b : m.reliability) {
    if (b.count == 0) continue;
    const int x0 = left + static_cast<int>(b.lower * plot), x1 = left + static_cast<int>(b.upper * plot);
    const int y = top + plot - static_cast<int>(b.accuracy * plot);
    cv::rectangle(img, cv::Rect(x0 + 1, y, std::max(1, x1 - x0 - 2), top + plot - y), cv::Scalar(180, 119, 31), cv::FILLED);
    const int yc = top + plot - static_cast<int>(b.confidence * plot);
    cv::line(img, {x0 + 1, yc}, {x1 - 1, yc}, cv::Scalar(40, 39, 214), 2);
  }
  for (int t = 0; t <= 4; ++t) {
    const std::string v = t == 0 ? "0" : t == 4 ? "1" : "0." + std::to_string(t * 25);
    cv::putText(img, v, cv::Point(left - 36, top + plot - t * plot / 4 + 4), cv::FONT_HERSHEY_SIMPLEX, 0.4, cv::Scalar(60, 60, 60), 1, cv::LINE_AA);
    cv::putText(img, v, cv::Point(left + t * plot / 4 - 8, top + plot + 16), cv::FONT_HERSHEY_SIMPLEX, 0.4, cv::Scalar(60, 60, 60), 1, cv::LINE_AA);
  }
  cv::putText(img, "confidence (bars: accuracy, red: mean confidence)", cv::Point(left - 10, top + plot + 36),
              cv::FONT_HERSHEY_SIMPLEX, 0.4, cv::Scalar(0, 0, 0), 1, cv::LINE_AA);
  write_png(path, img);
}

void write_scatter_png(const std::string& path, const torch::Tensor& points, const torch::Tensor& labels,
                       const std::vector<std::string>& names, const std::string& title) {
  const int w = 640, h = 520, left = 20, top = 40, pw = 480, ph = 460;
  cv::Mat img(h, w, CV_8UC3, cv::Scalar(255, 255, 255));
  cv::putText(img, title, cv::Point(10, 22), cv::FONT_HERSHEY_SIMPLEX, 0.5, cv::Scalar(0, 0, 0), 1, cv::LINE_AA);
  auto p = points.to(torch::kDouble).contiguous();
  auto y = labels.to(torch::kLong).contiguous();
  const auto n = p.size(0);
  if (n > 0) {
    const auto lo = std::get<0>(p.min(0)), hi = std::get<0>(p.max(0));
    const double x0 = lo[0].item<double>(), y0 = lo[1].item<double>();
    const double sx = std::max(1e-9, hi[0].item<double>() - x0), sy = std::max(1e-9, hi[1].item<double>() - y0);
    const auto* pp = p.data_ptr<double>();
    const auto* yy = y.data_ptr<int64_t>();
    for (int64_t i = 0; i < n; ++i) {
      const cv::Point q(left + static_cast<int>((pp[2 * i] - x0) / sx * pw), top + ph - static_cast<int>((pp[2 * i + 1] - y0) / sy * ph));
      cv::circle(img, q, 2, kPalette[static_cast<size_t>(yy[i]) % std::size(kPalette)], cv::FILLED, cv::LINE_AA);
    }
  }
  for (size_t k = 0; k < names.size(); ++k) {
    const auto color = kPalette[k % std::size(kPalette)];
    cv::circle(img, cv::Point(left + pw + 30, top + 20 + 22 * static_cast<int>(k)), 5, color, cv::FILLED, cv::LINE_AA);
    cv::putText(img, names[k], cv::Point(left + pw + 42, top + 25 + 22 * static_cast<int>(k)), cv::FONT_HERSHEY_SIMPLEX, 0.45,
                cv::Scalar(0, 0, 0), 1, cv::LINE_AA);
  }
  write_png(path, img);
}

}  // namespace fervid
