// Reading image files safely (design.md section 1, first step of the pipeline).
//
// read_image() reads the file's bytes itself (any UTF-8 path), identifies the format from its
// first bytes, reads the width and height the header claims and refuses an image that claims
// more pixels than a limit BEFORE anything is decoded (a 30000 x 30000 PNG of a few hundred
// bytes must not allocate 2.7 GB). Only then does cv::imdecode run. Every failure throws
// fervid::DataError whose message names the file and the problem.
//
// Output: CV_8UC3 BGR or CV_8UC1 gray, 8 bits per channel (16-bit images are scaled down,
// alpha is dropped, EXIF orientation is applied, as cv::imdecode does). The caller owns the Mat.
#pragma once

#include <opencv2/core.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>  // dataset.h's DataError derives from std::runtime_error
#include <string>

#include "fervid/dataset.h"  // DataError

namespace fervid {

enum class ImageColor : uint8_t {
  kBgr,  // CV_8UC3, OpenCV's channel order
  // CV_8UC1 by the decoder's own conversion: for JPEG its luma plane, which can differ by a
  // level or two from cv::cvtColor of the BGR image (what preprocess_face does).
  kGray,
};

// The header claims more than ImageReadOptions::max_pixels: refused before decoding (a server
// answers it with 413, other DataErrors with 400).
class ImageTooLargeError : public DataError {
 public:
  using DataError::DataError;
};

struct ImageReadOptions {
  ImageColor color = ImageColor::kBgr;
  // Largest width * height a header may claim. 40 MP covers every camera photo we expect
  // (a 7000 x 5700 frame) while a decoded BGR image stays under 120 MB.
  int64_t max_pixels = 40'000'000;
  // Largest file read into memory; a file larger than this is refused before it is read.
  int64_t max_file_bytes = int64_t{256} << 20;
};

// What a format's header says, read without decoding.
struct ImageHeader {
  // "png", "jpeg", "bmp", "tiff", "webp", "pnm", "pfm", "sunras", "hdr", "jpeg2000", "openexr"
  std::string format;
  int64_t width = 0, height = 0;
};

// Identifies the format of `data` (the first bytes of a file; the whole file for JPEG, whose
// size marker may come after large metadata) and the size its header claims.
// Returns nullopt when the format is not one of those (GIF, which OpenCV does not decode, and
// non-image data): read_image refuses those, since it could not apply the pixel limit. Throws DataError
// (naming `where`) when the signature is recognised but the header is cut short or malformed (e.g. a PNG
// without IHDR, a JPEG without a frame marker).
std::optional<ImageHeader> sniff_image_header(const uint8_t* data, size_t size, const std::string& where);

// Reads and decodes one image file (see the top of this file). Throws DataError when the file
// is missing, unreadable, empty, larger than max_file_bytes, not an image format we can size,
// claims more than max_pixels (message gives the claimed width x height), is truncated or
// corrupt (cv::imdecode fails, or a JPEG has no end-of-image marker after its scan data).
cv::Mat read_image(const std::string& path, const ImageReadOptions& options = {});

// The same, for bytes already in memory (an upload, a frame from a socket); `where` names the
// source in error messages.
cv::Mat decode_image(const uint8_t* data, size_t size, const std::string& where,
                     const ImageReadOptions& options = {});

// Encodes `image` in the format its extension names (.png, .jpg, ...) and writes it atomically
// (temporary file, then rename). Throws DataError naming the path when the extension is
// unknown or the write fails.
void write_image(const std::string& path, const cv::Mat& image);

// The file extensions the folder readers treat as images (lower case, with the dot).
bool has_image_extension(const std::string& path);

}  // namespace fervid
