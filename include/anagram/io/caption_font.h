// anagram/io/caption_font.h: captions in a real TrueType/OpenType font (FreeType), for
// animations.
//
// Fonts come from the system (DejaVu Sans, Debian's fonts-dejavu-core) or --font, never from a
// bundle or a sample folder. A font file is untrusted all the same: it is bounded in size and
// read by FreeType, which checks what it reads (a truncated or corrupt font is refused or its
// glyphs are skipped, never a crash), and the font's hinting programs are never run.
//
//   auto font = anagram::CaptionFont::load(*anagram::CaptionFont::default_path());
//   font.draw_centered(frame, "a dog", 0, 300, frame.width, 40, 0.7f);
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "anagram/io/image_io.h"

namespace anagram {

class CaptionFont {
 public:
  // Whether this build has FreeType (without it there are no TrueType captions).
  static bool supported();
  // Throws Error(kInvalidArgument) for a missing, oversized (> 32 MiB) or unreadable font.
  static CaptionFont load(const std::filesystem::path& path);
  // The same from the file's bytes; `name` is for messages.
  static CaptionFont from_bytes(std::string bytes, const std::string& name);
  // DejaVu Sans where Debian puts it, or nothing (also when !supported()).
  static std::optional<std::filesystem::path> default_path();

  // Draws UTF-8 `text` in black, centred in the box (left, top, width, height), blended over
  // what is there with `opacity` in [0, 1]. The text is as tall as the box allows (about 60%
  // of its height) and shrinks to fit its width; characters the font lacks show as its
  // missing-glyph box, and glyphs it cannot render are left out.
  void draw_centered(RgbImage& image, const std::string& text, int left, int top, int width,
                     int height, float opacity) const;

 private:
  struct Face;
  explicit CaptionFont(std::shared_ptr<const Face> face) : face_(std::move(face)) {}
  std::shared_ptr<const Face> face_;
};

}  // namespace anagram
