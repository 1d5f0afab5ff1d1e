#include "anagram/io/caption_font.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <vector>

#include "anagram/core/error.h"
#include "text/unicode_text.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#define STB_TRUETYPE_IMPLEMENTATION
#define STBTT_STATIC
#include <stb_truetype.h>
#pragma GCC diagnostic pop

namespace anagram {

struct CaptionFont::Face {
  std::vector<unsigned char> bytes;
  stbtt_fontinfo info{};
};

CaptionFont CaptionFont::load(const std::filesystem::path& path) {
  constexpr uintmax_t kMaxFontBytes = 32u << 20;
  const auto fail = [&](const std::string& what) {
    throw Error(ErrorKind::kInvalidArgument, "font", "'" + path.string() + "': " + what);
  };
  std::error_code ec;
  const uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec) fail("cannot read it: " + ec.message());
  if (size > kMaxFontBytes || size < 12) fail("not a font file of a plausible size");
  auto face = std::make_shared<Face>();
  face->bytes.resize(static_cast<size_t>(size));
  std::ifstream in(path, std::ios::binary);
  if (!in.read(reinterpret_cast<char*>(face->bytes.data()), static_cast<std::streamsize>(size))) {
    fail("cannot read it");
  }
  const int offset = stbtt_GetFontOffsetForIndex(face->bytes.data(), 0);
  if (offset < 0 || !stbtt_InitFont(&face->info, face->bytes.data(), offset)) {
    fail("not a TrueType font");
  }
  return CaptionFont(std::move(face));
}

std::optional<std::filesystem::path> CaptionFont::default_path() {
  for (const char* candidate :
       {"/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/TTF/DejaVuSans.ttf",
        "/usr/share/fonts/dejavu/DejaVuSans.ttf"}) {
    std::error_code ec;
    if (std::filesystem::is_regular_file(candidate, ec)) return std::filesystem::path(candidate);
  }
  return std::nullopt;
}

void CaptionFont::draw_centered(RgbImage& image, const std::string& text, int left, int top,
                                int width, int height, float opacity) const {
  std::u32string codepoints;
  try {
    codepoints = detail::decode_utf8(text);
  } catch (const Error&) {
    for (const unsigned char c : text) codepoints.push_back(c < 128 ? c : U'?');
  }
  const stbtt_fontinfo& info = face_->info;
  const auto text_width = [&](float scale) {
    float w = 0;
    for (size_t i = 0; i < codepoints.size(); ++i) {
      int advance = 0, bearing = 0;
      stbtt_GetCodepointHMetrics(&info, static_cast<int>(codepoints[i]), &advance, &bearing);
      w += static_cast<float>(advance) * scale;
      if (i + 1 < codepoints.size()) {
        w += scale *
             static_cast<float>(stbtt_GetCodepointKernAdvance(
                 &info, static_cast<int>(codepoints[i]), static_cast<int>(codepoints[i + 1])));
      }
    }
    return w;
  };
  float scale = stbtt_ScaleForPixelHeight(&info, 0.6f * static_cast<float>(height));
  const float margin = 0.05f * static_cast<float>(width);
  const float fits = text_width(scale);
  if (fits > static_cast<float>(width) - 2 * margin && fits > 0) {
    scale *= (static_cast<float>(width) - 2 * margin) / fits;
  }
  int ascent = 0, descent = 0, gap = 0;
  stbtt_GetFontVMetrics(&info, &ascent, &descent, &gap);
  const float baseline =
      static_cast<float>(top) +
      (static_cast<float>(height) + static_cast<float>(ascent + descent) * scale) / 2;
  float x = static_cast<float>(left) + (static_cast<float>(width) - text_width(scale)) / 2;
  for (size_t i = 0; i < codepoints.size(); ++i) {
    const int cp = static_cast<int>(codepoints[i]);
    int gw = 0, gh = 0, gx = 0, gy = 0;
    unsigned char* glyph = stbtt_GetCodepointBitmap(&info, scale, scale, cp, &gw, &gh, &gx, &gy);
    const int origin_x = static_cast<int>(std::lround(x)) + gx;
    const int origin_y = static_cast<int>(std::lround(baseline)) + gy;
    for (int r = 0; glyph != nullptr && r < gh; ++r) {
      for (int c = 0; c < gw; ++c) {
        const int px = origin_x + c, py = origin_y + r;
        if (px < left || py < top || px >= left + width || py >= top + height ||
            px >= image.width || py >= image.height || px < 0 || py < 0) {
          continue;
        }
        const float ink = opacity * static_cast<float>(glyph[r * gw + c]) / 255.0f;
        uint8_t* pixel = &image.pixels[(static_cast<size_t>(py) * image.width + px) * 3];
        for (int k = 0; k < 3; ++k) {
          pixel[k] = static_cast<uint8_t>(std::lround(static_cast<float>(pixel[k]) * (1 - ink)));
        }
      }
    }
    stbtt_FreeBitmap(glyph, nullptr);
    int advance = 0, bearing = 0;
    stbtt_GetCodepointHMetrics(&info, cp, &advance, &bearing);
    x += static_cast<float>(advance) * scale;
    if (i + 1 < codepoints.size()) {
      x += scale * static_cast<float>(stbtt_GetCodepointKernAdvance(
                       &info, cp, static_cast<int>(codepoints[i + 1])));
    }
  }
}

}  // namespace anagram
