// Helpers shared by the vision sources; not installed.
#pragma once

#include <opencv2/core.hpp>

#include <string>

namespace fervid::vision_internal {

// `image` as CV_8UC1 (shares the data when it already is). Throws std::invalid_argument,
// naming `who` and the image's type, for an empty image or one that is not 8-bit gray/BGR/BGRA.
cv::Mat to_gray(const cv::Mat& image, const char* who);

}  // namespace fervid::vision_internal
