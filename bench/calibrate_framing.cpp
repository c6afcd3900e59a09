// Framing calibration (issue 11, point 4): where the face detector puts its box on FER2013's
// faces, and the crop margin and vertical offset that turn that box back into FER2013's framing
// (the whole 48 x 48 image, as the dataset's registration framed it).
//
//   FERVID_DATA=../shared/data build/bench/fervid_calibrate_framing [--detector blazeface|haar]
//       [--split Training] [--count 3000] [--out experiments/detector/framing-<detector>.json]
//
// Each face is upscaled 4x (bilinear, 192 x 192) and given to the detector as a photo (BlazeFace
// then finds it through its padded retry, as for any already-cropped face). For a box (x, y, w, h)
// in the 48 x 48 frame, preprocess_face() reproduces the frame exactly with
//   margin_x = (48 / w - 1) / 2, margin_y = (48 / h - 1) / 2, offset_y = (24 - (y + h / 2)) / h;
// the medians over the faces are the recipe (one margin for both axes: their mean).
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "bench_env.h"
#include "fervid/atomic_file.h"
#include "fervid/readers.h"
#include "fervid/runtime.h"
#include "fervid/vision.h"

namespace {
double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}
double quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))];
}
}  // namespace

int main(int argc, char** argv) {
  std::string detector_name = "blazeface", split_name = "Training", out;
  size_t count = 3000;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--detector") detector_name = argv[i + 1];
    else if (a == "--split") split_name = argv[i + 1];
    else if (a == "--count") count = static_cast<size_t>(std::stoul(argv[i + 1]));
    else if (a == "--out") out = argv[i + 1];
    else {
      std::cerr << "fervid_calibrate_framing: unknown option " << a << "\n";
      return 2;
    }
  }
  const std::string data = fervid::bench::env("FERVID_DATA");
  if (data.empty()) {
    std::cerr << "fervid_calibrate_framing: set FERVID_DATA to the shared datasets\n";
    return 2;
  }
  if (out.empty()) out = std::string(FERVID_SOURCE_DIR) + "/experiments/detector/framing-" + detector_name + ".json";
  fervid::configure_runtime(0);
  const auto split = fervid::parse_split(split_name);
  if (!split) {
    std::cerr << "fervid_calibrate_framing: --split must be Training, PublicTest or PrivateTest\n";
    return 2;
  }
  const auto fer = fervid::read_fer2013_csv(data + "/fer2013/fer2013.csv.gz");
  fervid::FaceDetectorOptions o;
  o.detector = fervid::parse_detector_kind(detector_name);
  o.min_face_size = 0;
  const fervid::FaceDetector detector(o);
  std::vector<double> mx, my, dy, ww, hh;
  size_t seen = 0, found = 0;
  const auto idx = fer.indices(*split);
  // Every k-th face of the split, so the sample spans it.
  const size_t step = std::max<size_t>(1, idx.size() / count);
  for (size_t k = 0; k < idx.size() && seen < count; k += step) {
    const cv::Mat face(48, 48, CV_8UC1, const_cast<uint8_t*>(fer.image(idx[k])));
    cv::Mat big;
    cv::resize(face, big, cv::Size(192, 192), 0, 0, cv::INTER_LINEAR);
    ++seen;
    const auto faces = detector.detect_faces(big);
    if (faces.empty()) continue;
    ++found;
    // The most central face.
    const auto& f = *std::min_element(faces.begin(), faces.end(), [](const auto& a, const auto& b) {
      auto d = [](const fervid::DetectedFace& x) {
        return std::hypot(x.box.x + x.box.width / 2.0 - 96, x.box.y + x.box.height / 2.0 - 96);
      };
      return d(a) < d(b);
    });
    const double y = f.box.y / 4.0, w = f.box.width / 4.0, h = f.box.height / 4.0;
    mx.push_back((48.0 / w - 1) / 2);
    my.push_back((48.0 / h - 1) / 2);
    dy.push_back((24.0 - (y + h / 2)) / h);
    ww.push_back(w);
    hh.push_back(h);
  }
  const double margin = (median(mx) + median(my)) / 2, offset = median(dy);
  nlohmann::json report = {
      {"detector", detector_name},
      {"split", split_name},
      {"faces_tried", seen},
      {"faces_found", found},
      {"box_w_median_px48", median(ww)},
      {"box_h_median_px48", median(hh)},
      {"margin_x", {{"median", median(mx)}, {"q10", quantile(mx, 0.1)}, {"q90", quantile(mx, 0.9)}}},
      {"margin_y", {{"median", median(my)}, {"q10", quantile(my, 0.1)}, {"q90", quantile(my, 0.9)}}},
      {"offset_y", {{"median", offset}, {"q10", quantile(dy, 0.1)}, {"q90", quantile(dy, 0.9)}}},
      {"recipe", {{"margin", margin}, {"offset_y", offset}}},
      {"how", "FER2013 faces upscaled 4x and detected as photos; margin = mean of the median x and y margins that "
              "grow the box to the 48 x 48 frame; offset_y = median shift of the box centre to the frame centre, in box "
              "heights (bench/calibrate_framing.cpp)"}};
  std::filesystem::create_directories(std::filesystem::path(out).parent_path());
  fervid::write_file_atomically(out, report.dump(2) + "\n");
  std::printf("%s on %s: found %zu of %zu faces; box %.1f x %.1f px of 48; margin %.3f (x %.3f, y %.3f), offset_y %.3f\n"
              "wrote %s\n",
              detector_name.c_str(), split_name.c_str(), found, seen, median(ww), median(hh), margin, median(mx),
              median(my), offset, out.c_str());
  return 0;
}
