#include "anagram/io/image_io.h"

#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <fstream>

#include "anagram/core/error.h"

// Third-party single-header libraries, compiled here only; their warnings are not ours.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_STATIC
#define STBI_ONLY_PNG
#define STBI_NO_STDIO
#define STBI_NO_HDR
#define STBI_NO_LINEAR
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#include <stb_easy_font.h>
#include <stb_image.h>
#include <stb_image_write.h>
#pragma GCC diagnostic pop

namespace anagram {

RgbImage to_rgb8(const torch::Tensor& image) {
  TORCH_CHECK(image.dim() == 3 && image.size(0) == 3, "to_rgb8 expects (3, H, W)");
  const auto bytes = ((image.detach().to(torch::kCPU, torch::kFloat) / 2 + 0.5).clamp(0, 1) * 255)
                         .round()
                         .to(torch::kUInt8)
                         .permute({1, 2, 0})
                         .contiguous();
  RgbImage out;
  out.height = static_cast<int>(image.size(1));
  out.width = static_cast<int>(image.size(2));
  out.pixels.assign(bytes.data_ptr<uint8_t>(), bytes.data_ptr<uint8_t>() + bytes.numel());
  return out;
}

RgbImage view_of(const View& view, const RgbImage& image) {
  const torch::Tensor x = torch::from_blob(const_cast<uint8_t*>(image.pixels.data()),
                                           {image.height, image.width, 3}, torch::kByte)
                                  .permute({2, 0, 1})
                                  .to(torch::kDouble) /
                              127.5 -
                          1;
  const torch::Tensor seen = ((view.apply(x) + 1) * 127.5)
                                 .round()
                                 .clamp(0, 255)
                                 .to(torch::kByte)
                                 .permute({1, 2, 0})
                                 .contiguous();
  RgbImage out;
  out.width = image.width;
  out.height = image.height;
  out.pixels.assign(seen.data_ptr<uint8_t>(), seen.data_ptr<uint8_t>() + seen.numel());
  return out;
}

RgbImage upscale_nearest(const RgbImage& image, int factor) {
  RgbImage out;
  out.width = image.width * factor;
  out.height = image.height * factor;
  out.pixels.resize(static_cast<size_t>(out.width) * out.height * 3);
  for (int y = 0; y < out.height; ++y) {
    for (int x = 0; x < out.width; ++x) {
      const uint8_t* src =
          &image.pixels[(static_cast<size_t>(y / factor) * image.width + x / factor) * 3];
      std::copy(src, src + 3, &out.pixels[(static_cast<size_t>(y) * out.width + x) * 3]);
    }
  }
  return out;
}

namespace {

void blit(RgbImage& dst, const RgbImage& src, int left, int top) {
  for (int y = 0; y < src.height; ++y) {
    std::copy_n(&src.pixels[static_cast<size_t>(y) * src.width * 3], src.width * 3,
                &dst.pixels[(static_cast<size_t>(top + y) * dst.width + left) * 3]);
  }
}

}  // namespace

// stb_easy_font's quads, filled.
void draw_bitmap_text(RgbImage& dst, const std::string& text, int left, int top, int scale) {
  std::string ascii;
  for (char c : text) ascii.push_back((c >= 32 && c < 127) ? c : '?');
  std::vector<char> vertices(ascii.size() * 300 + 64);
  const int quads = stb_easy_font_print(0, 0, ascii.data(), nullptr, vertices.data(),
                                        static_cast<int>(vertices.size()));
  constexpr int kVertexBytes = 16;  // x, y, z floats + 4 color bytes
  for (int q = 0; q < quads; ++q) {
    const auto* v0 = reinterpret_cast<const float*>(&vertices[(q * 4) * kVertexBytes]);
    const auto* v2 = reinterpret_cast<const float*>(&vertices[(q * 4 + 2) * kVertexBytes]);
    for (int y = static_cast<int>(v0[1] * scale); y < static_cast<int>(v2[1] * scale); ++y) {
      for (int x = static_cast<int>(v0[0] * scale); x < static_cast<int>(v2[0] * scale); ++x) {
        const int px = left + x, py = top + y;
        if (px < 0 || py < 0 || px >= dst.width || py >= dst.height) continue;
        std::fill_n(&dst.pixels[(static_cast<size_t>(py) * dst.width + px) * 3], 3, 0);
      }
    }
  }
}

RgbImage make_sheet(const std::vector<RgbImage>& tiles, const std::vector<std::string>& captions) {
  constexpr int kMargin = 8, kCaption = 28, kTextScale = 2;
  int width = kMargin, height = 0;
  for (const auto& tile : tiles) {
    width += tile.width + kMargin;
    height = std::max(height, tile.height);
  }
  RgbImage sheet;
  sheet.width = width;
  sheet.height = height + 2 * kMargin + kCaption;
  sheet.pixels.assign(static_cast<size_t>(sheet.width) * sheet.height * 3, 255);
  int left = kMargin;
  for (size_t i = 0; i < tiles.size(); ++i) {
    blit(sheet, tiles[i], left, kMargin);
    if (i < captions.size()) {
      draw_bitmap_text(sheet, captions[i], left, kMargin + height + 6, kTextScale);
    }
    left += tiles[i].width + kMargin;
  }
  return sheet;
}

namespace {

void append_be32(std::string& out, uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(value >> shift));
}

// An iTXt chunk: keyword, NUL, compression flag 0, method 0, empty language, NUL, empty
// translated keyword, NUL, UTF-8 text; its CRC covers the type and the data.
std::string itxt_chunk(const std::string& keyword, const std::string& text) {
  std::string data = keyword;
  data.append(std::string("\0\0\0\0\0", 5));
  data += text;
  std::string chunk;
  append_be32(chunk, static_cast<uint32_t>(data.size()));
  const std::string typed = "iTXt" + data;
  chunk += typed;
  append_be32(chunk, static_cast<uint32_t>(crc32(0L, reinterpret_cast<const Bytef*>(typed.data()),
                                                 static_cast<uInt>(typed.size()))));
  return chunk;
}

}  // namespace

std::string encode_png(const RgbImage& image,
                       const std::vector<std::pair<std::string, std::string>>& text) {
  std::string bytes;
  auto append = [](void* context, void* data, int size) {
    static_cast<std::string*>(context)->append(static_cast<const char*>(data), size);
  };
  if (!stbi_write_png_to_func(append, &bytes, image.width, image.height, 3, image.pixels.data(),
                              image.width * 3)) {
    throw Error(ErrorKind::kRuntime, "PNG encoding failed");
  }
  // The signature (8 bytes) and the IHDR chunk (25) come first; text chunks go right after.
  constexpr size_t kAfterHeader = 8 + 25;
  std::string chunks;
  for (const auto& [keyword, value] : text) chunks += itxt_chunk(keyword, value);
  bytes.insert(kAfterHeader, chunks);
  return bytes;
}

RgbImage read_png(const std::filesystem::path& path, int max_side) {
  constexpr uintmax_t kMaxPngBytes = 64u << 20;
  const auto fail = [&](const std::string& what) {
    throw Error(ErrorKind::kInvalidArgument, "picture '" + path.string() + "': " + what);
  };
  std::error_code ec;
  const uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec) fail("cannot read it: " + ec.message());
  if (size > kMaxPngBytes) fail("larger than 64 MiB");
  std::string bytes(static_cast<size_t>(size), '\0');
  std::ifstream in(path, std::ios::binary);
  if (!in.read(bytes.data(), static_cast<std::streamsize>(size))) fail("cannot read it");
  const auto* data = reinterpret_cast<const stbi_uc*>(bytes.data());
  const int length = static_cast<int>(bytes.size());
  int width = 0, height = 0, channels = 0;
  if (!stbi_info_from_memory(data, length, &width, &height, &channels)) fail("not a PNG picture");
  if (width < 1 || height < 1 || width > max_side || height > max_side) {
    fail(std::to_string(width) + "x" + std::to_string(height) + " pixels; at most " +
         std::to_string(max_side) + " a side");
  }
  if (stbi_is_16_bit_from_memory(data, length)) fail("16-bit PNGs are not read");
  stbi_uc* pixels = stbi_load_from_memory(data, length, &width, &height, &channels, 3);
  if (pixels == nullptr) fail(std::string("damaged PNG (") + stbi_failure_reason() + ")");
  RgbImage out;
  out.width = width;
  out.height = height;
  out.pixels.assign(pixels, pixels + static_cast<size_t>(width) * height * 3);
  stbi_image_free(pixels);
  return out;
}

void write_file_atomic(const std::filesystem::path& path, const std::string& bytes) {
  const std::filesystem::path temp =
      path.parent_path() / ("." + path.filename().string() + ".tmp-" + std::to_string(getpid()));
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) {
      std::error_code ignored;
      std::filesystem::remove(temp, ignored);
      throw Error(ErrorKind::kIo, "cannot write '" + path.string() + "'");
    }
  }
  std::error_code ec;
  std::filesystem::rename(temp, path, ec);
  if (ec) {
    std::filesystem::remove(temp, ec);
    throw Error(ErrorKind::kIo, "cannot write '" + path.string() + "': " + ec.message());
  }
}

}  // namespace anagram
