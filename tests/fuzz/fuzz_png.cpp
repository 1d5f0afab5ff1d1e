// Fuzzes the PNG reader (libpng's simplified API behind anagram::decode_png): any bytes as a
// picture to score or animate. Anything but a picture or a clean anagram::Error is a bug, and so
// is memory beyond the picture's own size (-rss_limit_mb in scripts/fuzz.sh).
#include <cstddef>
#include <cstdint>
#include <string>

#include "anagram/core/error.h"
#include "anagram/io/image_io.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const anagram::RgbImage image = anagram::decode_png(
        std::string(reinterpret_cast<const char*>(data), size), "fuzz.png", 512);
    if (image.pixels.size() != static_cast<size_t>(image.width) * image.height * 3)
      __builtin_trap();
  } catch (const anagram::Error&) {
  }
  return 0;
}
