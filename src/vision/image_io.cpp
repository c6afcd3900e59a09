// Image files: header sniffing with a pixel limit, then cv::imdecode (include/fervid/image_io.h).
#include "fervid/image_io.h"

#include <opencv2/imgcodecs.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <vector>

#include "fervid/atomic_file.h"

namespace fervid {

namespace {

namespace fs = std::filesystem;

uint32_t be16(const uint8_t* p) { return (uint32_t{p[0]} << 8) | p[1]; }
uint32_t be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
uint32_t le16(const uint8_t* p) { return (uint32_t{p[1]} << 8) | p[0]; }
uint32_t le32(const uint8_t* p) {
  return (uint32_t{p[3]} << 24) | (uint32_t{p[2]} << 16) | (uint32_t{p[1]} << 8) | p[0];
}

bool starts_with(const uint8_t* data, size_t size, const char* magic, size_t n) {
  return size >= n && std::memcmp(data, magic, n) == 0;
}

[[noreturn]] void malformed(const std::string& where, const std::string& format, const std::string& what) {
  throw DataError(where + ": malformed " + format + " header: " + what);
}

ImageHeader png_header(const uint8_t* d, size_t n, const std::string& where) {
  // Signature (8), then the first chunk must be IHDR: length (4), type (4), width, height.
  if (n < 24)
    malformed(where, "PNG", "file ends after " + std::to_string(n) + " bytes, before the IHDR size");
  if (std::memcmp(d + 12, "IHDR", 4) != 0) malformed(where, "PNG", "first chunk is not IHDR");
  return {"png", be32(d + 16), be32(d + 20)};
}

// Position of the JPEG start-of-scan marker's segment end, or 0; `header` gets the frame size.
size_t jpeg_scan(const uint8_t* d, size_t n, const std::string& where, ImageHeader* header) {
  size_t i = 2;
  bool have_frame = false;
  while (i + 1 < n) {
    if (d[i] != 0xFF) malformed(where, "JPEG", "expected a marker at byte " + std::to_string(i));
    while (i < n && d[i] == 0xFF) ++i;  // fill bytes
    if (i >= n) break;
    const uint8_t m = d[i++];
    if (m == 0x01 || (m >= 0xD0 && m <= 0xD8)) continue;  // markers without a length
    if (m == 0xD9) malformed(where, "JPEG", "end of image before any scan");
    if (i + 2 > n) break;
    const size_t len = be16(d + i);
    if (len < 2)
      malformed(where, "JPEG", "segment length " + std::to_string(len) + " at byte " + std::to_string(i));
    const bool sof = m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
    if (sof && !have_frame) {
      if (i + 7 > n) break;
      header->height = be16(d + i + 3);
      header->width = be16(d + i + 5);
      have_frame = true;
    }
    if (m == 0xDA) {
      if (!have_frame) malformed(where, "JPEG", "scan before the frame header");
      return std::min(n, i + len);
    }
    i += len;
  }
  if (!have_frame)
    malformed(where, "JPEG", "no frame (SOF) marker in " + std::to_string(n) + " bytes (truncated?)");
  return 0;
}

ImageHeader bmp_header(const uint8_t* d, size_t n, const std::string& where) {
  if (n < 26) malformed(where, "BMP", "file ends after " + std::to_string(n) + " bytes");
  const uint32_t dib = le32(d + 14);
  if (dib == 12) return {"bmp", le16(d + 18), le16(d + 20)};  // BITMAPCOREHEADER: 16-bit sizes
  if (dib < 40) malformed(where, "BMP", "info header size " + std::to_string(dib));
  const auto w = static_cast<int32_t>(le32(d + 18));
  const auto h = static_cast<int32_t>(le32(d + 22));  // negative: rows stored top-down
  if (w <= 0 || h == 0 || h == INT32_MIN) {
    malformed(where, "BMP", "size " + std::to_string(w) + " x " + std::to_string(h));
  }
  return {"bmp", w, h < 0 ? -int64_t{h} : h};
}

ImageHeader tiff_header(const uint8_t* d, size_t n, const std::string& where) {
  const bool le = d[0] == 'I';
  auto u16 = [&](size_t at) { return le ? le16(d + at) : be16(d + at); };
  auto u32 = [&](size_t at) { return le ? le32(d + at) : be32(d + at); };
  if (n < 8) malformed(where, "TIFF", "file ends after " + std::to_string(n) + " bytes");
  const size_t ifd = u32(4);
  if (ifd + 2 > n)
    malformed(where, "TIFF", "first directory at byte " + std::to_string(ifd) + " is past the end");
  const size_t count = u16(ifd);
  ImageHeader h{"tiff", -1, -1};
  for (size_t k = 0; k < count; ++k) {
    const size_t e = ifd + 2 + 12 * k;
    if (e + 12 > n) malformed(where, "TIFF", "directory entry " + std::to_string(k) + " is past the end");
    const uint32_t tag = u16(e), type = u16(e + 2);
    if (tag != 256 && tag != 257) continue;
    const int64_t v = type == 3 ? u16(e + 8) : type == 4 ? u32(e + 8) : -1;  // SHORT or LONG
    if (v < 0)
      malformed(where, "TIFF", "size tag " + std::to_string(tag) + " has type " + std::to_string(type));
    (tag == 256 ? h.width : h.height) = v;
  }
  if (h.width < 0 || h.height < 0)
    malformed(where, "TIFF", "no ImageWidth / ImageLength tag in the first directory");
  return h;
}

ImageHeader webp_header(const uint8_t* d, size_t n, const std::string& where) {
  if (n < 30) malformed(where, "WebP", "file ends after " + std::to_string(n) + " bytes");
  if (std::memcmp(d + 12, "VP8 ", 4) == 0) {
    if (d[23] != 0x9D || d[24] != 0x01 || d[25] != 0x2A) malformed(where, "WebP", "no VP8 start code");
    return {"webp", le16(d + 26) & 0x3FFF, le16(d + 28) & 0x3FFF};
  }
  if (std::memcmp(d + 12, "VP8L", 4) == 0) {
    if (d[20] != 0x2F) malformed(where, "WebP", "no VP8L signature");
    const uint32_t bits = le32(d + 21);
    return {"webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1};
  }
  if (std::memcmp(d + 12, "VP8X", 4) == 0) {
    const int64_t w = (int64_t{d[24]} | int64_t{d[25]} << 8 | int64_t{d[26]} << 16) + 1;
    const int64_t h = (int64_t{d[27]} | int64_t{d[28]} << 8 | int64_t{d[29]} << 16) + 1;
    return {"webp", w, h};
  }
  malformed(where, "WebP", "unknown chunk '" + std::string(reinterpret_cast<const char*>(d + 12), 4) + "'");
}

// Whitespace-separated tokens of a text header (PNM, PFM), skipping '#' comments.
class TextTokens {
 public:
  TextTokens(const uint8_t* d, size_t n, size_t start) : d_(d), n_(std::min<size_t>(n, 4096)), i_(start) {}
  bool next(std::string& tok) {
    tok.clear();
    while (i_ < n_) {
      if (d_[i_] == '#') {
        while (i_ < n_ && d_[i_] != '\n') ++i_;
      } else if (std::isspace(d_[i_])) {
        ++i_;
      } else {
        break;
      }
    }
    while (i_ < n_ && !std::isspace(d_[i_]) && d_[i_] != '#') tok.push_back(static_cast<char>(d_[i_++]));
    return !tok.empty();
  }

 private:
  const uint8_t* d_;
  size_t n_, i_;
};

int64_t parse_dim(const std::string& tok, const std::string& where, const char* format, const char* field) {
  if (tok.empty() || tok.size() > 12 ||
      !std::all_of(tok.begin(), tok.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    malformed(where, format, std::string(field) + " is '" + tok.substr(0, 20) + "'");
  }
  return std::stoll(tok);
}

ImageHeader pnm_header(const uint8_t* d, size_t n, const std::string& where) {
  TextTokens t(d, n, 2);
  std::string tok;
  if (d[1] == '7') {  // PAM: "WIDTH w", "HEIGHT h" lines up to ENDHDR
    ImageHeader h{"pnm", -1, -1};
    while (t.next(tok) && tok != "ENDHDR") {
      if (tok == "WIDTH" || tok == "HEIGHT") {
        std::string v;
        t.next(v);
        (tok == "WIDTH" ? h.width : h.height) =
            parse_dim(v, where, "PAM", tok == "WIDTH" ? "WIDTH" : "HEIGHT");
      }
    }
    if (h.width < 0 || h.height < 0) malformed(where, "PAM", "no WIDTH / HEIGHT before ENDHDR");
    return h;
  }
  t.next(tok);
  const int64_t w = parse_dim(tok, where, "PNM", "width");
  t.next(tok);
  return {d[1] == 'F' || d[1] == 'f' ? "pfm" : "pnm", w, parse_dim(tok, where, "PNM", "height")};
}

ImageHeader radiance_header(const uint8_t* d, size_t n, const std::string& where) {
  // Header lines end with an empty line; the next line is e.g. "-Y 480 +X 640".
  const size_t limit = std::min<size_t>(n, 65536);
  const char* s = reinterpret_cast<const char*>(d);
  const std::string text(s, limit);
  const auto blank = text.find("\n\n");
  if (blank == std::string::npos) malformed(where, "Radiance HDR", "no end of header");
  const auto eol = text.find('\n', blank + 2);
  const std::string line =
      text.substr(blank + 2, eol == std::string::npos ? std::string::npos : eol - blank - 2);
  char a[3] = {}, b[3] = {};
  long long v1 = 0, v2 = 0;
  if (std::sscanf(line.c_str(), "%2s %lld %2s %lld", a, &v1, b, &v2) != 4 || (a[1] != 'X' && a[1] != 'Y')) {
    malformed(where, "Radiance HDR", "resolution line is '" + line.substr(0, 40) + "'");
  }
  return a[1] == 'Y' ? ImageHeader{"hdr", v2, v1} : ImageHeader{"hdr", v1, v2};
}

ImageHeader jpeg2000_header(const uint8_t* d, size_t n, const std::string& where) {
  if (d[0] == 0xFF) {  // raw codestream: SOC, then SIZ with the reference grid and its offset
    if (n < 24 || d[2] != 0xFF || d[3] != 0x51) malformed(where, "JPEG 2000", "no SIZ marker after SOC");
    return {"jpeg2000", int64_t{be32(d + 8)} - be32(d + 16), int64_t{be32(d + 12)} - be32(d + 20)};
  }
  // JP2 container: boxes (length, type); the image header box 'ihdr' sits in the 'jp2h' box.
  size_t i = 0, end = n;
  while (i + 8 <= end) {
    uint64_t len = be32(d + i);
    size_t head = 8;
    if (len == 1) {
      if (i + 16 > end) break;
      len = (uint64_t{be32(d + i + 8)} << 32) | be32(d + i + 12);
      head = 16;
    } else if (len == 0) {
      len = end - i;
    }
    if (len < head || len > end - i)
      malformed(where, "JPEG 2000", "box length " + std::to_string(len) + " at byte " + std::to_string(i));
    if (std::memcmp(d + i + 4, "jp2h", 4) == 0) {  // descend into the superbox
      end = i + static_cast<size_t>(len);
      i += head;
      continue;
    }
    if (std::memcmp(d + i + 4, "ihdr", 4) == 0) {
      if (i + head + 8 > end) break;
      return {"jpeg2000", be32(d + i + head + 4), be32(d + i + head)};
    }
    i += static_cast<size_t>(len);
  }
  malformed(where, "JPEG 2000", "no image header (ihdr) box");
}

ImageHeader openexr_header(const uint8_t* d, size_t n, const std::string& where) {
  // After magic and version: attributes (name NUL, type NUL, int32 size, value) up to a NUL.
  size_t i = 8;
  while (i < n && d[i] != 0) {
    const auto name_end = static_cast<const uint8_t*>(std::memchr(d + i, 0, n - i));
    if (!name_end) break;
    const std::string name(reinterpret_cast<const char*>(d + i), static_cast<size_t>(name_end - (d + i)));
    i = static_cast<size_t>(name_end - d) + 1;
    const auto type_end = i < n ? static_cast<const uint8_t*>(std::memchr(d + i, 0, n - i)) : nullptr;
    if (!type_end) break;
    i = static_cast<size_t>(type_end - d) + 1;
    if (i + 4 > n) break;
    const size_t size = le32(d + i);
    i += 4;
    if (size > n - i) break;
    if (name == "dataWindow" && size == 16) {
      const auto x0 = static_cast<int32_t>(le32(d + i)), y0 = static_cast<int32_t>(le32(d + i + 4));
      const auto x1 = static_cast<int32_t>(le32(d + i + 8)), y1 = static_cast<int32_t>(le32(d + i + 12));
      return {"openexr", int64_t{x1} - x0 + 1, int64_t{y1} - y0 + 1};
    }
    i += size;
  }
  malformed(where, "OpenEXR", "no dataWindow attribute");
}

std::string first_bytes_hex(const uint8_t* d, size_t n) {
  std::string out;
  char buf[4];
  for (size_t i = 0; i < std::min<size_t>(n, 8); ++i) {
    std::snprintf(buf, sizeof buf, "%02x ", d[i]);
    out += buf;
  }
  if (!out.empty()) out.pop_back();
  return out;
}

}  // namespace

std::optional<ImageHeader> sniff_image_header(const uint8_t* d, size_t n, const std::string& where) {
  if (starts_with(d, n, "\x89PNG\r\n\x1a\n", 8)) return png_header(d, n, where);
  if (starts_with(d, n, "\xFF\xD8\xFF", 3)) {
    ImageHeader h{"jpeg", 0, 0};
    jpeg_scan(d, n, where, &h);
    return h;
  }
  if (starts_with(d, n, "BM", 2)) return bmp_header(d, n, where);
  if (starts_with(d, n, "II*\0", 4) || starts_with(d, n, "MM\0*", 4)) return tiff_header(d, n, where);
  if (starts_with(d, n, "RIFF", 4) && n >= 12 && std::memcmp(d + 8, "WEBP", 4) == 0)
    return webp_header(d, n, where);
  if (n >= 3 && d[0] == 'P' && ((d[1] >= '1' && d[1] <= '7') || d[1] == 'F' || d[1] == 'f') &&
      std::isspace(d[2])) {
    return pnm_header(d, n, where);
  }
  if (starts_with(d, n, "\x59\xA6\x6A\x95", 4)) {
    if (n < 12) malformed(where, "Sun raster", "file ends after " + std::to_string(n) + " bytes");
    return ImageHeader{"sunras", be32(d + 4), be32(d + 8)};
  }
  if (starts_with(d, n, "#?RADIANCE", 10) || starts_with(d, n, "#?RGBE", 6))
    return radiance_header(d, n, where);
  if (starts_with(d, n, "\x00\x00\x00\x0CjP  \r\n\x87\n", 12) || starts_with(d, n, "\xFF\x4F\xFF\x51", 4)) {
    return jpeg2000_header(d, n, where);
  }
  if (starts_with(d, n, "\x76\x2F\x31\x01", 4)) return openexr_header(d, n, where);
  return std::nullopt;
}

void write_image(const std::string& path, const cv::Mat& image) {
  std::string ext = std::filesystem::u8path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (ext.empty()) throw DataError(path + ": no file extension to choose an image format by");
  std::vector<uchar> bytes;
  bool ok = false;
  try {
    ok = cv::imencode(ext, image, bytes);
  } catch (const cv::Exception& e) {
    throw DataError(path + ": cannot encode the image as " + ext + ": " + e.what());
  }
  if (!ok) throw DataError(path + ": cannot encode the image as " + ext);
  try {
    write_file_atomically(path, std::string(bytes.begin(), bytes.end()));
  } catch (const std::exception& e) {
    throw DataError(e.what());
  }
}

cv::Mat decode_image(const uint8_t* data, size_t size, const std::string& where,
                     const ImageReadOptions& options) {
  if (options.max_pixels <= 0)
    throw std::invalid_argument("decode_image: max_pixels must be > 0, got " +
                                std::to_string(options.max_pixels));
  if (size == 0) throw DataError(where + ": empty file (0 bytes)");
  if (size > static_cast<size_t>(INT32_MAX)) {  // cv::imdecode takes an int-sized buffer
    throw DataError(where + ": " + std::to_string(size) +
                    " bytes, more than an image buffer can hold (2 GiB)");
  }
  const auto header = sniff_image_header(data, size, where);
  if (!header) {
    throw DataError(where +
                    ": not an image format we can read (PNG, JPEG, BMP, TIFF, WebP, PNM, PFM, Sun raster, "
                    "Radiance HDR, JPEG 2000, OpenEXR); first bytes " +
                    first_bytes_hex(data, size));
  }
  if (header->width <= 0 || header->height <= 0) {
    throw DataError(where + ": " + header->format + " header claims " + std::to_string(header->width) +
                    " x " + std::to_string(header->height) + " pixels (corrupt)");
  }
  // Refuse before decoding: the decoder would allocate what the header claims.
  if (header->width > options.max_pixels / header->height) {  // division: no overflow
    const auto claimed = static_cast<uint64_t>(header->width) * static_cast<uint64_t>(header->height);
    throw ImageTooLargeError(where + ": " + header->format + " header claims " + std::to_string(header->width) +
                    " x " + std::to_string(header->height) + " = " + std::to_string(claimed) +
                    " pixels, more than the limit of " + std::to_string(options.max_pixels) +
                    " (not decoded)");
  }
  if (header->format == "jpeg") {
    // libjpeg fills a truncated scan with gray and only warns; a complete JPEG has EOI after its scan.
    ImageHeader unused;
    const size_t scan = jpeg_scan(data, size, where, &unused);
    bool eoi = false;
    for (size_t i = scan; scan > 0 && i + 1 < size && !eoi; ++i) eoi = data[i] == 0xFF && data[i + 1] == 0xD9;
    if (!eoi) throw DataError(where + ": truncated JPEG (no end-of-image marker after the scan data)");
  }
  cv::Mat decoded;
  const int flags = options.color == ImageColor::kGray ? cv::IMREAD_GRAYSCALE : cv::IMREAD_COLOR;
  try {
    const cv::Mat buf(1, static_cast<int>(size), CV_8UC1, const_cast<uint8_t*>(data));
    decoded = cv::imdecode(buf, flags);
  } catch (const cv::Exception& e) {
    throw DataError(where + ": cannot decode " + header->format + " image: " + e.what());
  }
  if (decoded.empty()) {
    throw DataError(where + ": cannot decode " + header->format + " image of " +
                    std::to_string(header->width) + " x " + std::to_string(header->height) +
                    " (corrupt or truncated data)");
  }
  if (decoded.depth() != CV_8U) {  // 32-bit float formats (PFM, HDR): scale [0, 1] to 8 bits
    cv::Mat eight;
    decoded.convertTo(eight, CV_8U, 255.0);
    decoded = eight;
  }
  return decoded;
}

cv::Mat read_image(const std::string& path, const ImageReadOptions& options) {
  const fs::path p = fs::u8path(path);  // UTF-8 on every platform
  std::error_code ec;
  const auto status = fs::status(p, ec);
  if (ec || !fs::exists(status)) throw DataError(path + ": no such file");
  if (fs::is_directory(status)) throw DataError(path + ": is a directory, not an image file");
  const auto bytes = fs::file_size(p, ec);
  if (ec) throw DataError(path + ": cannot read the file size (" + ec.message() + ")");
  if (bytes == 0) throw DataError(path + ": empty file (0 bytes)");
  if (static_cast<int64_t>(bytes) > options.max_file_bytes) {
    throw DataError(path + ": file is " + std::to_string(bytes) + " bytes, more than the limit of " +
                    std::to_string(options.max_file_bytes));
  }
  std::ifstream in(p, std::ios::binary);
  if (!in) throw DataError(path + ": cannot open (" + std::strerror(errno) + ")");
  std::vector<uint8_t> data(static_cast<size_t>(bytes));
  in.read(reinterpret_cast<char*>(data.data()), static_cast<std::streamsize>(data.size()));
  if (static_cast<size_t>(in.gcount()) != data.size()) {
    throw DataError(path + ": read " + std::to_string(in.gcount()) + " of " + std::to_string(bytes) +
                    " bytes");
  }
  return decode_image(data.data(), data.size(), path, options);
}

bool has_image_extension(const std::string& path) {
  std::string ext = fs::u8path(path).extension().u8string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  static const char* kExtensions[] = {".png",  ".jpg",  ".jpeg", ".jpe", ".bmp", ".dib",
                                      ".pgm",  ".ppm",  ".pbm",  ".pnm", ".pam", ".tif",
                                      ".tiff", ".webp", ".ras",  ".sr",  ".hdr", ".pfm"};
  return std::any_of(std::begin(kExtensions), std::end(kExtensions), [&](const char* e) { return ext == e; });
}

}  // namespace fervid
