// Helpers for the vision tests: temporary folders, files written byte by byte, crafted PNGs.
// Torch-free on purpose (tests/test_util.h pulls in libtorch; only data_dir.cpp includes it).
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>  // mkdtemp

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include <algorithm>
#include <cstdio>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "fervid/vision.h"

namespace fervid::test {

namespace fs = std::filesystem;

inline fs::path fixtures_dir() { return fs::u8path(FERVID_FIXTURES_DIR); }

// $FERVID_DATA (defined in data_dir.cpp from tests/test_util.h: fails when unset).
fs::path shared_data_dir();

// A fresh folder under the system's temp folder, removed with everything in it at scope end.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "fervid-vision-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed for " + tmpl);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }
  // A path inside, from a UTF-8 relative name; creates the parent folders.
  fs::path file(const std::string& relative) const {
    const fs::path p = path_ / fs::u8path(relative);
    fs::create_directories(p.parent_path());
    return p;
  }

 private:
  fs::path path_;
};

// The faces found in one hand-annotated photo (tests/fixtures/face_boxes.json: [x, y, w, h] per
// face) against its annotation: as many as annotated, and every annotated face overlapped by a
// detection with IoU >= 0.5. Prints the IoUs for the log.
inline void expect_matches_annotation(const std::string& name, const cv::Mat& img, const std::vector<cv::Rect>& found,
                                      const nlohmann::json& faces) {
  EXPECT_EQ(found.size(), faces.size());
  std::printf("  %-24s %4d x %-4d: %zu found, %zu annotated; IoU", name.c_str(), img.cols, img.rows, found.size(),
              faces.size());
  for (const auto& f : faces) {
    const cv::Rect truth(f.at(0).get<int>(), f.at(1).get<int>(), f.at(2).get<int>(), f.at(3).get<int>());
    double best = 0.0;
    for (const auto& d : found) best = std::max(best, box_iou(truth, d));
    std::printf(" %.2f", best);
    EXPECT_GE(best, 0.5) << "annotated face (" << truth.x << ", " << truth.y << ", " << truth.width << " x "
                         << truth.height << ")";
  }
  std::printf("\n");
}

inline void write_bytes(const fs::path& p, const std::vector<uint8_t>& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + p.u8string());
}

inline std::vector<uint8_t> encode(const cv::Mat& image, const std::string& ext) {
  std::vector<uint8_t> bytes;
  if (!cv::imencode(ext, image, bytes)) throw std::runtime_error("cv::imencode failed for " + ext);
  return bytes;
}

// Writes `image` encoded by its extension (our own file I/O: works for any UTF-8 name).
inline void write_image(const fs::path& p, const cv::Mat& image) {
  write_bytes(p, encode(image, p.extension().string()));
}

// CRC-32 (ISO-HDLC, PNG's), bit by bit: small and obviously right.
inline uint32_t crc32(const uint8_t* data, size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) {
    c ^= data[i];
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return c ^ 0xFFFFFFFFu;
}

inline void put_be32(std::vector<uint8_t>& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(v >> s));
}

// A PNG chunk with a valid CRC.
inline void put_png_chunk(std::vector<uint8_t>& out, const char type[4],
                          const std::vector<uint8_t>& payload) {
  put_be32(out, static_cast<uint32_t>(payload.size()));
  const size_t start = out.size();
  out.insert(out.end(), type, type + 4);
  out.insert(out.end(), payload.begin(), payload.end());
  put_be32(out, crc32(out.data() + start, out.size() - start));
}

// Signature + IHDR claiming width x height (8-bit gray) + an IDAT of `idat` + IEND, all CRCs valid.
inline std::vector<uint8_t> crafted_png(uint32_t width, uint32_t height,
                                        const std::vector<uint8_t>& idat = {}) {
  std::vector<uint8_t> out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  std::vector<uint8_t> ihdr;
  put_be32(ihdr, width);
  put_be32(ihdr, height);
  ihdr.insert(ihdr.end(), {8, 0, 0, 0, 0});  // bit depth, gray, deflate, filter 0, no interlace
  put_png_chunk(out, "IHDR", ihdr);
  put_png_chunk(out, "IDAT", idat);
  put_png_chunk(out, "IEND", {});
  return out;
}

}  // namespace fervid::test
