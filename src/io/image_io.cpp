#include "anagram/io/image_io.h"

#include <fcntl.h>
#include <png.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>

#include "anagram/core/error.h"

// Third-party single-header libraries (writing PNG, the bitmap font), compiled here only; their
// warnings are not ours. PNGs are read with libpng, which bounds what an untrusted file costs.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#include <stb_easy_font.h>
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

RgbImage decode_png(const std::string& bytes, const std::string& name, int max_side) {
  const auto fail = [&](const std::string& what) {
    throw Error(ErrorKind::kInvalidArgument, "picture '" + name + "': " + what);
  };
  if (bytes.size() > kMaxPngBytes) fail("larger than 64 MiB");
  // libpng's simplified reader: the header first, so the size is checked before any pixel is
  // decoded; then row by row into a buffer of exactly that size (compressed data beyond the
  // last row is never inflated into memory).
  png_image image;
  std::memset(&image, 0, sizeof image);
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&image, bytes.data(), bytes.size())) {
    const std::string why = image.message;
    png_image_free(&image);
    fail("not a PNG picture (" + why + ")");
  }
  const int width = static_cast<int>(std::min<png_uint_32>(image.width, 1u << 30));
  const int height = static_cast<int>(std::min<png_uint_32>(image.height, 1u << 30));
  if (width < 1 || height < 1 || width > max_side || height > max_side) {
    png_image_free(&image);
    fail(std::to_string(image.width) + "x" + std::to_string(image.height) + " pixels; at most " +
         std::to_string(max_side) + " a side");
  }
  if (image.format & PNG_FORMAT_FLAG_LINEAR) {
    png_image_free(&image);
    fail("16-bit PNGs are not read");
  }
  // RGBA, then the alpha dropped (not blended): what the picture's pixels say.
  image.format = PNG_FORMAT_RGBA;
  std::vector<uint8_t> rgba(static_cast<size_t>(width) * height * 4);
  if (!png_image_finish_read(&image, nullptr, rgba.data(), 0, nullptr)) {
    const std::string why = image.message;
    png_image_free(&image);
    fail("damaged PNG (" + why + ")");
  }
  RgbImage out;
  out.width = width;
  out.height = height;
  out.pixels.resize(static_cast<size_t>(width) * height * 3);
  for (size_t i = 0, n = static_cast<size_t>(width) * height; i < n; ++i) {
    std::copy_n(&rgba[i * 4], 3, &out.pixels[i * 3]);
  }
  return out;
}

RgbImage read_png(const std::filesystem::path& path, int max_side) {
  std::string bytes;
  try {
    bytes = read_at_most(path, kMaxPngBytes);
  } catch (const std::exception& e) {
    throw Error(ErrorKind::kInvalidArgument,
                "picture '" + path.string() + "': cannot read it: " + e.what());
  }
  return decode_png(bytes, path.string(), max_side);
}

std::string read_at_most(const std::filesystem::path& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(std::strerror(errno));
  std::string bytes;
  char chunk[1 << 16];
  while (bytes.size() <= max_bytes) {
    in.read(chunk, sizeof chunk);
    bytes.append(chunk, static_cast<size_t>(in.gcount()));
    if (!in) break;
  }
  if (in.bad()) throw std::runtime_error("read error");
  if (bytes.size() > max_bytes) bytes.resize(max_bytes + 1);
  return bytes;
}

namespace {

// The file system said no while writing: the disk is full, the file size limit (ulimit -f) is
// reached, or the device failed. A failure while working (exit 1), not bad input.
bool out_of_room(int error) {
  return error == ENOSPC || error == EFBIG || error == EDQUOT || error == EIO;
}

[[noreturn]] void write_failed(const std::filesystem::path& path, int error) {
  throw Error(out_of_room(error) ? ErrorKind::kRuntime : ErrorKind::kIo,
              "cannot write '" + path.string() + "': " + std::strerror(error));
}

std::string random_suffix() {
  std::random_device device;
  char text[17];
  std::snprintf(text, sizeof text, "%08x%08x", device(), device());
  return text;
}

}  // namespace

void write_file_atomic(const std::filesystem::path& path, const std::string& bytes) {
  struct stat info {};
  if (lstat(path.c_str(), &info) == 0 && S_ISLNK(info.st_mode)) {
    throw Error(ErrorKind::kIo,
                "'" + path.string() + "' is a symbolic link; not followed, not replaced");
  }
  // An unpredictable name, created here and now (O_EXCL) and never through a link: a name
  // planted in a shared folder cannot redirect the write.
  const std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : ".";
  const std::string stem = "." + path.filename().string().substr(0, 200) + ".tmp-";
  std::filesystem::path temp;
  int fd = -1;
  for (int attempt = 0; fd < 0 && attempt < 16; ++attempt) {
    temp = dir / (stem + random_suffix());
    fd = open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0) write_failed(path, errno);
  const auto fail = [&](int error) {
    close(fd);
    unlink(temp.c_str());
    write_failed(path, error);
  };
  for (size_t done = 0; done < bytes.size();) {
    const ssize_t wrote = write(fd, bytes.data() + done, bytes.size() - done);
    if (wrote < 0 && errno == EINTR) continue;
    if (wrote <= 0) fail(wrote < 0 ? errno : ENOSPC);
    done += static_cast<size_t>(wrote);
  }
  // On disk before the name points at it: a crash leaves the old file or the new one, whole.
  if (fsync(fd) != 0) fail(errno);
  if (close(fd) != 0) {
    const int error = errno;
    unlink(temp.c_str());
    write_failed(path, error);
  }
  // rename replaces a link at `path` (planted since the check above) rather than following it.
  if (rename(temp.c_str(), path.c_str()) != 0) {
    const int error = errno;
    unlink(temp.c_str());
    write_failed(path, error);
  }
}

}  // namespace anagram
