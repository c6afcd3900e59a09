// preprocess_face: shape and type, bilinear resampling against a reference, gray weights,
// margin and border handling, alignment geometry from synthetic landmarks; box helpers.
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>

#include "fervid/vision.h"
#include "vision_test_util.h"

namespace fervid {
namespace {

// Bilinear sampling with half-pixel centres and edge clamping: what cv::INTER_LINEAR computes.
double bilinear_reference(const cv::Mat& src, int out_size, int ox, int oy) {
  const double sx = std::clamp((ox + 0.5) * src.cols / out_size - 0.5, 0.0, src.cols - 1.0);
  const double sy = std::clamp((oy + 0.5) * src.rows / out_size - 0.5, 0.0, src.rows - 1.0);
  const int x0 = static_cast<int>(std::floor(sx)), y0 = static_cast<int>(std::floor(sy));
  const int x1 = std::min(x0 + 1, src.cols - 1), y1 = std::min(y0 + 1, src.rows - 1);
  const double fx = sx - x0, fy = sy - y0;
  auto at = [&](int y, int x) { return static_cast<double>(src.at<uint8_t>(y, x)); };
  return (1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x1)) +
         fy * ((1 - fx) * at(y1, x0) + fx * at(y1, x1));
}

PreprocessOptions plain(int size) {
  PreprocessOptions o;
  o.size = size;
  o.margin = 0.0;
  return o;
}

// 68 landmarks with the eye points 36-41 around `left` and 42-47 around `right`, the rest at 0.
std::vector<cv::Point2f> eyes_at(cv::Point2f left, cv::Point2f right) {
  std::vector<cv::Point2f> pts(kNumLandmarks, cv::Point2f(0, 0));
  const cv::Point2f ring[6] = {{-4, 0}, {-2, -2}, {2, -2}, {4, 0}, {2, 2}, {-2, 2}};  // mean 0
  for (int i = 0; i < 6; ++i) {
    pts[static_cast<size_t>(36 + i)] = left + ring[i];
    pts[static_cast<size_t>(42 + i)] = right + ring[i];
  }
  return pts;
}

TEST(Preprocess, OutputIsSizeBySizeContinuousGray) {
  cv::Mat bgr(150, 200, CV_8UC3);
  cv::randu(bgr, cv::Scalar::all(0), cv::Scalar::all(256));
  for (int size : {48, 37, 224, 1}) {
    for (const cv::Mat& img : {bgr, cv::Mat(bgr(cv::Rect(10, 10, 120, 100)))}) {  // also a non-continuous ROI
      PreprocessOptions o;
      o.size = size;
      const cv::Mat out = preprocess_face(img, cv::Rect(20, 15, 60, 70), o);
      EXPECT_EQ(out.type(), CV_8UC1);
      EXPECT_EQ(out.rows, size);
      EXPECT_EQ(out.cols, size);
      EXPECT_TRUE(out.isContinuous());
    }
  }
}

TEST(Preprocess, ResizeIsBilinearOnAKnownGradient) {
  // Horizontal ramp 0, 16, ..., 240 over 16 columns, upscaled 3x to 48: bilinear gives the
  // linear ramp 16 * ((x + 0.5) / 3 - 0.5) clamped at the edges; nearest would give steps of 3.
  cv::Mat ramp(16, 16, CV_8UC1);
  for (int y = 0; y < 16; ++y) {
    for (int x = 0; x < 16; ++x) ramp.at<uint8_t>(y, x) = static_cast<uint8_t>(16 * x);
  }
  const cv::Mat up = preprocess_face(ramp, cv::Rect(0, 0, 16, 16), plain(48));
  for (int x = 0; x < 48; ++x) {
    const double expected = 16.0 * std::clamp((x + 0.5) / 3.0 - 0.5, 0.0, 15.0);
    EXPECT_NEAR(up.at<uint8_t>(24, x), expected, 1.0) << "column " << x;
  }
  EXPECT_NEAR(up.at<uint8_t>(24, 3), 16.0 * (3.5 / 3.0 - 0.5), 1.0);  // 10.7: between two source levels
  // Downscale of a non-linear pattern (where area averaging and bilinear differ): matches the
  // bilinear reference at every pixel, to rounding.
  cv::Mat pattern(80, 100, CV_8UC1);
  for (int y = 0; y < 80; ++y) {
    for (int x = 0; x < 100; ++x)
      pattern.at<uint8_t>(y, x) = static_cast<uint8_t>((x * x + 7 * y * y + 13 * x * y) % 251);
  }
  const cv::Mat down = preprocess_face(pattern, cv::Rect(0, 0, 100, 80), plain(48));
  cv::Mat area;
  cv::resize(pattern, area, cv::Size(48, 48), 0, 0, cv::INTER_AREA);
  double worst = 0.0;
  for (int y = 0; y < 48; ++y) {
    for (int x = 0; x < 48; ++x) {
      worst = std::max(worst, std::abs(down.at<uint8_t>(y, x) - bilinear_reference(pattern, 48, x, y)));
    }
  }
  EXPECT_LE(worst, 1.0);
  EXPECT_GT(cv::norm(down, area, cv::NORM_INF), 20.0);  // the check can tell bilinear from area
}

TEST(Preprocess, GrayUsesOpenCvBgrWeights) {
  // Pure blue, green, red: 0.114, 0.587, 0.299 of 255 (BGR order, not RGB).
  const cv::Scalar colours[3] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}};
  const int expected[3] = {29, 150, 76};
  for (int i = 0; i < 3; ++i) {
    const cv::Mat img(20, 20, CV_8UC3, colours[i]);
    const cv::Mat out = preprocess_face(img, cv::Rect(0, 0, 20, 20), plain(8));
    EXPECT_EQ(out.at<uint8_t>(4, 4), expected[i]) << "channel " << i;
  }
  const cv::Mat bgra(20, 20, CV_8UC4, cv::Scalar(0, 0, 255, 0));  // alpha ignored
  EXPECT_EQ(preprocess_face(bgra, cv::Rect(0, 0, 20, 20), plain(8)).at<uint8_t>(4, 4), 76);
}

TEST(Preprocess, MarginGrowsTheCropOnEverySide) {
  // A white 60 x 60 box on black; margin 0.25 adds 15 px per side: crop 90 px -> 48 px, the
  // box spans output columns 8..40.
  cv::Mat img(200, 200, CV_8UC1, cv::Scalar(0));
  img(cv::Rect(70, 70, 60, 60)).setTo(255);
  PreprocessOptions o;
  o.size = 48;
  o.margin = 0.25;
  const cv::Mat out = preprocess_face(img, cv::Rect(70, 70, 60, 60), o);
  EXPECT_EQ(out.at<uint8_t>(24, 24), 255);
  EXPECT_EQ(out.at<uint8_t>(24, 3), 0);
  EXPECT_EQ(out.at<uint8_t>(3, 24), 0);
  EXPECT_EQ(out.at<uint8_t>(24, 44), 0);
  EXPECT_EQ(out.at<uint8_t>(44, 24), 0);
  EXPECT_EQ(out.at<uint8_t>(24, 10), 255);
  EXPECT_EQ(out.at<uint8_t>(24, 37), 255);
}

TEST(Preprocess, MarginCropAtTheBorderPadsInsteadOfCrashing) {
  const cv::Mat img(100, 120, CV_8UC1, cv::Scalar(10));
  PreprocessOptions o;
  o.size = 40;
  o.margin = 0.5;
  // A box in the corner, one partly outside, one larger than the image.
  for (const cv::Rect box :
       {cv::Rect(0, 0, 20, 20), cv::Rect(-15, 90, 40, 30), cv::Rect(-50, -50, 300, 300)}) {
    o.border = BorderMode::kReplicate;
    const cv::Mat rep = preprocess_face(img, box, o);
    EXPECT_EQ(cv::countNonZero(rep != 10), 0) << "replicate repeats the edge";
    o.border = BorderMode::kConstant;
    o.border_value = 200;
    const cv::Mat con = preprocess_face(img, box, o);
    EXPECT_EQ(con.at<uint8_t>(0, 0), 200) << "outside the image: the constant";
    EXPECT_EQ(con.size(), cv::Size(40, 40));
  }
  // Corner box with margin 0.5: the top-left quarter of the crop is outside, the centre inside.
  o.border = BorderMode::kConstant;
  const cv::Mat con = preprocess_face(img, cv::Rect(0, 0, 20, 20), o);
  EXPECT_EQ(con.at<uint8_t>(5, 5), 200);
  EXPECT_EQ(con.at<uint8_t>(20, 20), 10);
}

TEST(Preprocess, AlignmentLevelsTheEyeLine) {
  // Two bright eye blobs on a tilted line (26.6 degrees); after alignment they share a row.
  const cv::Point2f left(80, 90), right(140, 120);
  cv::Mat img(240, 240, CV_8UC1, cv::Scalar(0));
  cv::circle(img, left, 6, cv::Scalar(255), cv::FILLED);
  cv::circle(img, right, 6, cv::Scalar(255), cv::FILLED);
  const auto lm = eyes_at(left, right);
  EXPECT_NEAR(eye_line_angle(lm), std::atan2(30.0, 60.0) * 180 / CV_PI, 1e-4);
  PreprocessOptions o;
  o.size = 96;
  o.margin = 0.2;
  o.align = true;
  const cv::Rect box(60, 50, 110, 110);
  const cv::Mat aligned = preprocess_face(img, box, o, &lm);
  o.align = false;
  const cv::Mat tilted = preprocess_face(img, box, o, &lm);  // landmarks ignored without align
  auto blob_rows = [](const cv::Mat& m) {
    // Centroid row of the bright pixels in the left and right halves.
    std::pair<double, double> rows;
    for (int half = 0; half < 2; ++half) {
      const cv::Mat part = m(cv::Rect(half * m.cols / 2, 0, m.cols / 2, m.rows));
      const cv::Moments mo = cv::moments(part > 128, true);
      (half ? rows.second : rows.first) = mo.m00 > 0 ? mo.m01 / mo.m00 : -1000.0;
    }
    return rows;
  };
  const auto [al, ar] = blob_rows(aligned);
  EXPECT_NEAR(al, ar, 1.0) << "aligned eye rows";
  const auto [tl, tr] = blob_rows(tilted);
  EXPECT_GT(tr - tl, 15.0) << "unaligned eye rows differ";
}

TEST(Preprocess, RejectsBadInputWithTheValues) {
  const cv::Mat img(50, 50, CV_8UC1, cv::Scalar(0));
  auto msg = [](auto&& f) -> std::string {
    try {
      f();
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "no std::invalid_argument";
  };
  PreprocessOptions o;
  EXPECT_NE(msg([&] { preprocess_face(cv::Mat(), cv::Rect(0, 0, 5, 5), o); }).find("empty image"),
            std::string::npos);
  EXPECT_NE(msg([&] { preprocess_face(cv::Mat(10, 10, CV_32FC1), cv::Rect(0, 0, 5, 5), o); }).find("depth 5"),
            std::string::npos);
  EXPECT_NE(msg([&] { preprocess_face(img, cv::Rect(60, 60, 10, 10), o); }).find("(x 60, y 60, 10 x 10)"),
            std::string::npos);
  EXPECT_NE(msg([&] { preprocess_face(img, cv::Rect(0, 0, 0, 10), o); }).find("empty or outside"),
            std::string::npos);
  o.size = 0;
  EXPECT_NE(msg([&] { preprocess_face(img, cv::Rect(0, 0, 5, 5), o); }).find("got 0"), std::string::npos);
  o = {};
  o.margin = -0.5;
  EXPECT_NE(msg([&] { preprocess_face(img, cv::Rect(0, 0, 5, 5), o); }).find("got -0.5"), std::string::npos);
  o = {};
  o.align = true;
  EXPECT_NE(msg([&] { preprocess_face(img, cv::Rect(0, 0, 5, 5), o); }).find("no landmarks"),
            std::string::npos);
  const std::vector<cv::Point2f> five(5);
  EXPECT_NE(
      msg([&] { preprocess_face(img, cv::Rect(0, 0, 5, 5), o, &five); }).find("expected 68 landmarks or 6 BlazeFace keypoints, got 5"),
      std::string::npos);
}

TEST(Boxes, IouAndLargest) {
  EXPECT_DOUBLE_EQ(box_iou(cv::Rect(0, 0, 10, 10), cv::Rect(0, 0, 10, 10)), 1.0);
  EXPECT_DOUBLE_EQ(box_iou(cv::Rect(0, 0, 10, 10), cv::Rect(5, 0, 10, 10)), 50.0 / 150.0);
  EXPECT_DOUBLE_EQ(box_iou(cv::Rect(0, 0, 10, 10), cv::Rect(20, 20, 5, 5)), 0.0);
  EXPECT_DOUBLE_EQ(box_iou(cv::Rect(0, 0, 0, 0), cv::Rect(0, 0, 0, 0)), 0.0);
  EXPECT_EQ(largest_face({{0, 0, 5, 5}, {10, 0, 9, 9}, {30, 0, 9, 9}}), cv::Rect(10, 0, 9, 9));
  EXPECT_EQ(largest_face({}), cv::Rect());
}

TEST(Landmarks, EyeCentresAndAngleSign) {
  const auto lm = eyes_at({10, 20}, {50, 20});
  EXPECT_EQ(left_eye_center(lm), cv::Point2f(10, 20));
  EXPECT_EQ(right_eye_center(lm), cv::Point2f(50, 20));
  EXPECT_NEAR(eye_line_angle(lm), 0.0, 1e-9);
  EXPECT_NEAR(eye_line_angle(eyes_at({10, 20}, {50, 60})), 45.0, 1e-4);   // right eye lower
  EXPECT_NEAR(eye_line_angle(eyes_at({10, 60}, {50, 20})), -45.0, 1e-4);  // right eye higher
  EXPECT_THROW(eye_line_angle(std::vector<cv::Point2f>(67)), std::invalid_argument);
}

}  // namespace
}  // namespace fervid
