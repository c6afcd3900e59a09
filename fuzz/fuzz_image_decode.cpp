// Image decoding from bytes (decode_image, as the server decodes uploads): the header sniffer,
// the pixel limit checked before decoding, then OpenCV's decoders. Bad input is a DataError
// (ImageTooLargeError for a header claiming too many pixels).
#include <cstddef>
#include <cstdint>

#include "fervid/image_io.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  for (const auto color : {fervid::ImageColor::kBgr, fervid::ImageColor::kGray}) {
    fervid::ImageReadOptions o;
    o.color = color;
    o.max_pixels = 1 << 20;  // a megapixel: decoding stays fast, the limit is exercised
    try {
      const auto image = fervid::decode_image(data, size, "fuzz upload", o);
      if (image.empty()) __builtin_trap();  // decode_image never returns an empty image
    } catch (const fervid::DataError&) {
    }
  }
  return 0;
}
