// Fuzzes the caption font (FreeType behind anagram::CaptionFont): any bytes as --font, then a
// caption drawn with it. Anything but a drawing or a clean anagram::Error is a bug.
#include <cstddef>
#include <cstdint>
#include <string>

#include "anagram/core/error.h"
#include "anagram/io/caption_font.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const anagram::CaptionFont font = anagram::CaptionFont::from_bytes(
        std::string(reinterpret_cast<const char*>(data), size), "fuzz.ttf");
    anagram::RgbImage canvas;
    canvas.width = 96;
    canvas.height = 32;
    canvas.pixels.assign(96 * 32 * 3, 255);
    font.draw_centered(canvas, "Ag, caf\xc3\xa9 \xe2\x82\xac", 0, 0, 96, 32, 0.8f);
  } catch (const anagram::Error&) {
  }
  return 0;
}
