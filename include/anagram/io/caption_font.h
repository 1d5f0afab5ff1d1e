// anagram/io/caption_font.h: captions in a real TrueType font (stb_truetype), for animations.
//
// Fonts come from the system (DejaVu Sans, Debian's fonts-dejavu-core) or --font. stb_truetype
// trusts its input, so a font file is bounded in size and taken only from the user, never from
// a bundle or a sample folder.
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
  // Throws Error(kInvalidArgument) for a missing, oversized (> 32 MiB) or unreadable font.
  static CaptionFont load(const std::filesystem::path& path);
  // DejaVu Sans where Debian puts it, or nothing.
  static std::optional<std::filesystem::path> default_path();

  // Draws UTF-8 `text` in black, centred in the box (left, top, width, height), blended over
  // what is there with `opacity` in [0, 1]. The text is as tall as the box allows (about 60%
  // of its height) and shrinks to fit its width; characters the font lacks show as its
  // missing-glyph box.
  void draw_centered(RgbImage& image, const std::string& text, int left, int top, int width,
                     int height, float opacity) const;

 private:
  struct Face;
  explicit CaptionFont(std::shared_ptr<const Face> face) : face_(std::move(face)) {}
  std::shared_ptr<const Face> face_;
};

}  // namespace anagram
