// read_image / decode_image / sniff_image_header: the pixel limit is applied before decoding,
// every failure is a DataError naming the file and the problem, UTF-8 paths work.
#include <opencv2/imgcodecs.hpp>

#include <cstring>
#include <random>

#include "fervid/image_io.h"
#include "vision_test_util.h"

namespace fervid {
namespace {

using test::TempDir;

// The DataError message of `f()`, or a test failure when it does not throw one.
template <typename F>
std::string data_error_of(F&& f) {
  try {
    f();
  } catch (const DataError& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected DataError, got another exception: " << e.what();
    return {};
  }
  ADD_FAILURE() << "expected DataError, nothing was thrown";
  return {};
}

cv::Mat noise_image(int w, int h, int type, unsigned seed) {
  cv::Mat m(h, w, type);
  cv::theRNG().state = seed;
  cv::randu(m, cv::Scalar::all(0), cv::Scalar::all(256));
  return m;
}

TEST(ImageIo, HugePngHeaderIsRefusedBeforeDecoding) {
  TempDir dir;
  const auto path = dir.file("huge.png");
  // 30000 x 30000 claimed by a valid IHDR (CRC correct) in a file of a few dozen bytes.
  test::write_bytes(path, test::crafted_png(30000, 30000));
  const std::string msg = data_error_of([&] { read_image(path.u8string()); });
  EXPECT_NE(msg.find(path.u8string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("30000 x 30000"), std::string::npos) << msg;
  EXPECT_NE(msg.find("900000000 pixels"), std::string::npos) << msg;
  EXPECT_NE(msg.find("limit of 40000000"), std::string::npos) << msg;
  EXPECT_NE(msg.find("not decoded"), std::string::npos) << msg;
}

TEST(ImageIo, PixelLimitRefusesADecodableImage) {
  // A real, decodable 2000 x 1000 PNG: refused under a 1 MP limit, read under a 2 MP one, so
  // it is the limit (not a decoding failure) that refuses it.
  TempDir dir;
  const auto path = dir.file("big.png");
  test::write_image(path, cv::Mat(1000, 2000, CV_8UC1, cv::Scalar(7)));
  ImageReadOptions small;
  small.max_pixels = 1'000'000;
  const std::string msg = data_error_of([&] { read_image(path.u8string(), small); });
  EXPECT_NE(msg.find("2000 x 1000"), std::string::npos) << msg;
  EXPECT_NE(msg.find("limit of 1000000"), std::string::npos) << msg;
  ImageReadOptions enough;
  enough.max_pixels = 2'000'000;
  const cv::Mat img = read_image(path.u8string(), enough);
  EXPECT_EQ(img.cols, 2000);
  EXPECT_EQ(img.rows, 1000);
  EXPECT_EQ(img.type(), CV_8UC3);
  EXPECT_EQ(img.at<cv::Vec3b>(500, 1000), cv::Vec3b(7, 7, 7));
}

TEST(ImageIo, LimitAppliesToEverySniffedFormat) {
  // Each writable format, 300 x 200, under a limit of 50000 pixels: refused with its size.
  for (const std::string ext :
       {".png", ".jpg", ".bmp", ".tiff", ".webp", ".pgm", ".ppm", ".ras", ".hdr", ".pfm", ".jp2", ".exr"}) {
    if (!cv::haveImageWriter(ext)) continue;
    SCOPED_TRACE(ext);
    const cv::Mat src = ext == ".pgm" ? noise_image(300, 200, CV_8UC1, 3) : noise_image(300, 200, CV_8UC3, 3);
    cv::Mat img = src;
    if (ext == ".hdr" || ext == ".pfm" || ext == ".exr") src.convertTo(img, CV_32F, 1.0 / 255);
    const auto bytes = test::encode(img, ext);
    const auto header = sniff_image_header(bytes.data(), bytes.size(), "x" + ext);
    ASSERT_TRUE(header.has_value());
    EXPECT_EQ(header->width, 300);
    EXPECT_EQ(header->height, 200);
    ImageReadOptions limit;
    limit.max_pixels = 50'000;
    const std::string msg =
        data_error_of([&] { decode_image(bytes.data(), bytes.size(), "x" + ext, limit); });
    EXPECT_NE(msg.find("300 x 200"), std::string::npos) << msg;
    const cv::Mat back = decode_image(bytes.data(), bytes.size(), "x" + ext);
    EXPECT_EQ(back.size(), cv::Size(300, 200));
    EXPECT_EQ(back.type(), CV_8UC3);
  }
}

TEST(ImageIo, SniffsSizesWithoutDecoding) {
  // Headers alone, no pixel data: the sizes still come out.
  const auto png = test::crafted_png(123, 45);
  auto h = sniff_image_header(png.data(), png.size(), "a.png");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->format, "png");
  EXPECT_EQ(h->width, 123);
  EXPECT_EQ(h->height, 45);
  // BMP with a negative (top-down) height.
  std::vector<uint8_t> bmp(54, 0);
  bmp[0] = 'B';
  bmp[1] = 'M';
  bmp[14] = 40;
  const int32_t w = 640, hgt = -480;
  std::memcpy(&bmp[18], &w, 4);
  std::memcpy(&bmp[22], &hgt, 4);
  h = sniff_image_header(bmp.data(), bmp.size(), "a.bmp");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->width, 640);
  EXPECT_EQ(h->height, 480);
  // PNM with a comment in its header.
  const std::string pgm = "P5\n# made by hand\n  1024 768\n255\n";
  h = sniff_image_header(reinterpret_cast<const uint8_t*>(pgm.data()), pgm.size(), "a.pgm");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->width, 1024);
  EXPECT_EQ(h->height, 768);
  // Not an image at all.
  const std::string text = "hello, world";
  EXPECT_FALSE(sniff_image_header(reinterpret_cast<const uint8_t*>(text.data()), text.size(), "a.txt"));
}

TEST(ImageIo, SniffingCutOrCorruptHeadersNeverCrashes) {
  // Every prefix of every format's file, and copies with header bytes overwritten: the sniffer
  // returns a header or nullopt, or throws DataError; never reads out of bounds (run under ASan).
  std::mt19937 rng(17);
  const cv::Mat img = noise_image(64, 48, CV_8UC3, 9);  // JPEG 2000 cannot encode much smaller
  for (const std::string ext :
       {".png", ".jpg", ".bmp", ".tiff", ".webp", ".pgm", ".ppm", ".ras", ".hdr", ".pfm", ".jp2", ".exr"}) {
    if (!cv::haveImageWriter(ext)) continue;
    SCOPED_TRACE(ext);
    cv::Mat src = img;
    if (ext == ".pgm") cv::extractChannel(img, src, 0);  // PGM is gray only
    if (ext == ".hdr" || ext == ".pfm" || ext == ".exr") img.convertTo(src, CV_32F, 1.0 / 255);
    const auto bytes = test::encode(src, ext);
    auto sniff = [&](const std::vector<uint8_t>& b, size_t n) {
      try {
        const auto h = sniff_image_header(b.data(), n, "f" + ext);
        if (h) {
          EXPECT_FALSE(h->format.empty());
        }
      } catch (const DataError&) {
      }
    };
    for (size_t n = 0; n <= std::min<size_t>(bytes.size(), 600); ++n) sniff(bytes, n);
    for (int trial = 0; trial < 300; ++trial) {
      auto bad = bytes;
      for (int k = 0; k < 4; ++k) bad[rng() % std::min<size_t>(bad.size(), 64)] = static_cast<uint8_t>(rng());
      sniff(bad, bad.size());
    }
  }
}

TEST(ImageIo, GarbageWithAPngNameIsAClearError) {
  TempDir dir;
  const auto path = dir.file("unreadable.png");
  std::vector<uint8_t> garbage(500);
  std::mt19937 rng(5);
  for (auto& b : garbage) b = static_cast<uint8_t>(rng());
  garbage[0] = 'x';  // not a PNG (or any) signature by chance
  test::write_bytes(path, garbage);
  const std::string msg = data_error_of([&] { read_image(path.u8string()); });
  EXPECT_NE(msg.find(path.u8string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("not an image format"), std::string::npos) << msg;
}

TEST(ImageIo, CorruptPngDataIsAClearError) {
  // A valid 64 x 64 header whose IDAT is not a deflate stream.
  TempDir dir;
  const auto path = dir.file("corrupt.png");
  test::write_bytes(path, test::crafted_png(64, 64, {1, 2, 3, 4, 5, 6, 7, 8}));
  const std::string msg = data_error_of([&] { read_image(path.u8string()); });
  EXPECT_NE(msg.find(path.u8string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("cannot decode png image of 64 x 64"), std::string::npos) << msg;
}

TEST(ImageIo, TruncatedFilesAreClearErrors) {
  TempDir dir;
  const cv::Mat img = noise_image(96, 64, CV_8UC3, 11);
  for (const std::string ext : {".png", ".jpg"}) {
    SCOPED_TRACE(ext);
    auto bytes = test::encode(img, ext);
    ASSERT_EQ(decode_image(bytes.data(), bytes.size(), "whole" + ext).size(), cv::Size(96, 64));
    bytes.resize(bytes.size() / 2);
    const auto path = dir.file("truncated" + ext);
    test::write_bytes(path, bytes);
    const std::string msg = data_error_of([&] { read_image(path.u8string()); });
    EXPECT_NE(msg.find(path.u8string()), std::string::npos) << msg;
    // libjpeg decodes a truncated scan without error (gray fill): the end-of-image check catches it.
    const char* expected =
        ext == ".jpg" ? "truncated JPEG (no end-of-image marker" : "cannot decode png image of 96 x 64";
    EXPECT_NE(msg.find(expected), std::string::npos) << msg;
  }
  // Cut inside the header: the size cannot even be read.
  auto png = test::encode(img, ".png");
  png.resize(20);
  const std::string msg = data_error_of([&] { decode_image(png.data(), png.size(), "head.png"); });
  EXPECT_NE(msg.find("head.png: malformed PNG header"), std::string::npos) << msg;
}

TEST(ImageIo, MissingEmptyAndFolderPathsAreClearErrors) {
  TempDir dir;
  const auto missing = (dir.path() / "nope.jpg").u8string();
  std::string msg = data_error_of([&] { read_image(missing); });
  EXPECT_EQ(msg, missing + ": no such file");
  const auto empty = dir.file("empty.png");
  test::write_bytes(empty, {});
  msg = data_error_of([&] { read_image(empty.u8string()); });
  EXPECT_EQ(msg, empty.u8string() + ": empty file (0 bytes)");
  msg = data_error_of([&] { read_image(dir.path().u8string()); });
  EXPECT_NE(msg.find("is a directory"), std::string::npos) << msg;
  const auto big = dir.file("big.png");
  test::write_bytes(big, std::vector<uint8_t>(2000, 0));
  ImageReadOptions opt;
  opt.max_file_bytes = 1000;
  msg = data_error_of([&] { read_image(big.u8string(), opt); });
  EXPECT_NE(msg.find("2000 bytes, more than the limit of 1000"), std::string::npos) << msg;
}

TEST(ImageIo, NonAsciiPathReadsFine) {
  TempDir dir;
  const auto path = dir.file(u8"visages-été/面孔-ü.png");
  const cv::Mat img = noise_image(40, 30, CV_8UC3, 21);
  test::write_image(path, img);
  const cv::Mat back = read_image(path.u8string());
  ASSERT_EQ(back.size(), img.size());
  EXPECT_EQ(cv::norm(back, img, cv::NORM_INF), 0.0);  // PNG is lossless
  ImageReadOptions gray;
  gray.color = ImageColor::kGray;
  const cv::Mat g = read_image(path.u8string(), gray);
  EXPECT_EQ(g.type(), CV_8UC1);
  EXPECT_EQ(g.size(), img.size());
}

TEST(ImageIo, ImageExtensions) {
  for (const char* p :
       {"a.png", "b.JPG", "c.jpeg", "d.bmp", "e.pgm", "f.tif", "g.TIFF", "h.webp", u8"été.Png"}) {
    EXPECT_TRUE(has_image_extension(p)) << p;
  }
  for (const char* p : {"a.txt", "b", ".png.txt", "c.gif", "d.csv"})
    EXPECT_FALSE(has_image_extension(p)) << p;
}

}  // namespace
}  // namespace fervid
