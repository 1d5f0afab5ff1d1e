#include "anagram/io/caption_font.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <mutex>
#include <vector>

#include "anagram/core/error.h"
#include "text/unicode_text.h"

#ifdef ANAGRAM_HAVE_FREETYPE
#include <ft2build.h>
#include FT_FREETYPE_H
#endif

namespace anagram {

namespace {

constexpr uintmax_t kMaxFontBytes = 32u << 20;

[[noreturn]] void font_error(const std::string& name, const std::string& what) {
  throw Error(ErrorKind::kInvalidArgument, "font", "'" + name + "': " + what);
}

}  // namespace

std::optional<std::filesystem::path> CaptionFont::default_path() {
  if (!supported()) return std::nullopt;
  for (const char* candidate :
       {"/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/TTF/DejaVuSans.ttf",
        "/usr/share/fonts/dejavu/DejaVuSans.ttf"}) {
    std::error_code ec;
    if (std::filesystem::is_regular_file(candidate, ec)) return std::filesystem::path(candidate);
  }
  return std::nullopt;
}

CaptionFont CaptionFont::load(const std::filesystem::path& path) {
  std::string bytes;
  try {
    bytes = read_at_most(path, kMaxFontBytes);
  } catch (const std::exception& e) {
    font_error(path.string(), std::string("cannot read it: ") + e.what());
  }
  return from_bytes(std::move(bytes), path.string());
}

#ifdef ANAGRAM_HAVE_FREETYPE

// FreeType reads the font (it is maintained, fuzzed and checks every table it uses, where
// stb_truetype trusts its input). The font's hinting programs are never run (FT_LOAD_NO_HINTING).
struct CaptionFont::Face {
  std::string bytes;  // FreeType reads the face from here
  FT_Library library = nullptr;
  FT_Face face = nullptr;
  mutable std::mutex mutex;  // a FreeType face is not thread-safe

  Face() = default;
  Face(const Face&) = delete;
  Face& operator=(const Face&) = delete;
  ~Face() {
    if (face != nullptr) FT_Done_Face(face);
    if (library != nullptr) FT_Done_FreeType(library);
  }
};

bool CaptionFont::supported() { return true; }

CaptionFont CaptionFont::from_bytes(std::string bytes, const std::string& name) {
  if (bytes.size() > kMaxFontBytes || bytes.size() < 12) {
    font_error(name, "not a font file of a plausible size");
  }
  auto face = std::make_shared<Face>();
  face->bytes = std::move(bytes);
  if (FT_Init_FreeType(&face->library) != 0) font_error(name, "FreeType cannot start");
  if (FT_New_Memory_Face(face->library, reinterpret_cast<const FT_Byte*>(face->bytes.data()),
                         static_cast<FT_Long>(face->bytes.size()), 0, &face->face) != 0) {
    font_error(name, "not a font FreeType can read");
  }
  const FT_Face f = face->face;
  if (!FT_IS_SCALABLE(f) || f->num_glyphs < 1 || f->units_per_EM < 16 ||
      f->ascender - f->descender <= 0 || FT_Select_Charmap(f, FT_ENCODING_UNICODE) != 0) {
    font_error(name, "not a scalable font with a Unicode character map");
  }
  return CaptionFont(std::move(face));
}

void CaptionFont::draw_centered(RgbImage& image, const std::string& text, int left, int top,
                                int width, int height, float opacity) const {
  std::u32string codepoints;
  try {
    codepoints = detail::decode_utf8(text);
  } catch (const Error&) {
    for (const unsigned char c : text) codepoints.push_back(c < 128 ? c : U'?');
  }
  const std::lock_guard<std::mutex> lock(face_->mutex);
  const FT_Face f = face_->face;
  // Glyph indices (0 is the font's missing-glyph box) and advances in font units.
  std::vector<FT_UInt> glyphs;
  std::vector<float> advances;
  float units = 0;
  for (const char32_t cp : codepoints) {
    const FT_UInt glyph = FT_Get_Char_Index(f, cp);
    float advance = 0;
    if (FT_Load_Glyph(f, glyph, FT_LOAD_NO_SCALE | FT_LOAD_NO_HINTING) == 0) {
      advance = static_cast<float>(f->glyph->advance.x);
    }
    if (!glyphs.empty() && FT_HAS_KERNING(f)) {
      FT_Vector kern{0, 0};
      if (FT_Get_Kerning(f, glyphs.back(), glyph, FT_KERNING_UNSCALED, &kern) == 0) {
        advances.back() += static_cast<float>(kern.x);
      }
    }
    glyphs.push_back(glyph);
    advances.push_back(advance);
  }
  for (const float a : advances) units += a;
  // As tall as 60% of the box (ascent to descent), shrunk to fit its width.
  float scale = 0.6f * static_cast<float>(height) / static_cast<float>(f->ascender - f->descender);
  const float margin = 0.05f * static_cast<float>(width);
  const float fits = units * scale;
  if (fits > static_cast<float>(width) - 2 * margin && fits > 0) {
    scale *= (static_cast<float>(width) - 2 * margin) / fits;
  }
  const float ppem = scale * static_cast<float>(f->units_per_EM);
  if (!(ppem >= 1) || ppem > 4096 ||
      FT_Set_Char_Size(f, 0, static_cast<FT_F26Dot6>(std::lround(ppem * 64)), 72, 72) != 0) {
    return;
  }
  const float baseline =
      static_cast<float>(top) +
      (static_cast<float>(height) + static_cast<float>(f->ascender + f->descender) * scale) / 2;
  float x = static_cast<float>(left) + (static_cast<float>(width) - units * scale) / 2;
  for (size_t i = 0; i < glyphs.size(); ++i) {
    const float advance = advances[i] * scale;
    // A glyph much larger than the box (a hostile font's outline) is not rendered at all.
    const bool loaded = FT_Load_Glyph(f, glyphs[i], FT_LOAD_NO_HINTING) == 0 &&
                        f->glyph->metrics.width / 64 <= 4 * (width + height) &&
                        f->glyph->metrics.height / 64 <= 4 * (width + height) &&
                        FT_Render_Glyph(f->glyph, FT_RENDER_MODE_NORMAL) == 0 &&
                        f->glyph->bitmap.pixel_mode == FT_PIXEL_MODE_GRAY;
    if (loaded) {
      const FT_Bitmap& bitmap = f->glyph->bitmap;
      const int origin_x = static_cast<int>(std::lround(x)) + f->glyph->bitmap_left;
      const int origin_y = static_cast<int>(std::lround(baseline)) - f->glyph->bitmap_top;
      for (int r = 0; r < static_cast<int>(bitmap.rows); ++r) {
        for (int c = 0; c < static_cast<int>(bitmap.width); ++c) {
          const int px = origin_x + c, py = origin_y + r;
          if (px < left || py < top || px >= left + width || py >= top + height ||
              px >= image.width || py >= image.height || px < 0 || py < 0) {
            continue;
          }
          const unsigned char value = bitmap.buffer[static_cast<ptrdiff_t>(r) * bitmap.pitch + c];
          const float ink = opacity * static_cast<float>(value) / 255.0f;
          uint8_t* pixel = &image.pixels[(static_cast<size_t>(py) * image.width + px) * 3];
          for (int k = 0; k < 3; ++k) {
            pixel[k] = static_cast<uint8_t>(std::lround(static_cast<float>(pixel[k]) * (1 - ink)));
          }
        }
      }
    }
    x += advance;
  }
}

#else

struct CaptionFont::Face {};

bool CaptionFont::supported() { return false; }

CaptionFont CaptionFont::from_bytes(std::string, const std::string& name) {
  font_error(name,
             "this build has no FreeType (install libfreetype-dev and rebuild); captions "
             "use the bitmap font without --font");
}

void CaptionFont::draw_centered(RgbImage&, const std::string&, int, int, int, int, float) const {}

#endif

}  // namespace anagram
