// anagram/io/image_io.h: model tensors -> 8-bit pictures -> PNG bytes, and atomic file writes.
//
// Basic usage:
//   anagram::RgbImage picture = anagram::to_rgb8(image);      // (3, H, W) in [-1, 1]
//   std::string png = anagram::encode_png(picture);
//   anagram::write_file_atomic("out/anagram.png", png);
//
// Where tensors live: anywhere; to_rgb8 copies its input to the host. RgbImage and every
// function on it work on the host only.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace anagram {

struct RgbImage {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;  // row-major RGB, 3 bytes per pixel
};

// image: (3, H, W) float in [-1, 1] on any device. Converted as the IF pipeline does:
// round(clamp(x / 2 + 0.5, 0, 1) * 255).
RgbImage to_rgb8(const torch::Tensor& image);

// Each pixel becomes a factor x factor block (pictures of 64x64 are small to look at).
RgbImage upscale_nearest(const RgbImage& image, int factor);

// Draws ASCII text in black with the bitmap font of the sheets, scaled `scale` times.
void draw_bitmap_text(RgbImage& image, const std::string& text, int left, int top, int scale);

// Tiles side by side on a white sheet, each with its caption (ASCII) underneath.
RgbImage make_sheet(const std::vector<RgbImage>& tiles, const std::vector<std::string>& captions);

// PNG file bytes (deterministic: the same pixels and text give the same bytes). Each text entry
// becomes an uncompressed iTXt chunk (UTF-8) after the header, as stable-diffusion tools write
// their "parameters": image viewers and `exiftool` show it.
std::string encode_png(const RgbImage& image,
                       const std::vector<std::pair<std::string, std::string>>& text = {});

// The bounds on every PNG the program reads (they are the user's files): the file's bytes and
// the pixels a side, both checked before anything is decoded.
constexpr uintmax_t kMaxPngBytes = 64u << 20;
constexpr int kMaxPngSide = 4096;

// Reads an 8-bit PNG (grey, RGB, palette or with alpha, which is dropped) as RGB, with libpng.
// Bounded: at most kMaxPngBytes and max_side pixels a side, checked from the header before
// decoding; memory is the picture's own size whatever the compressed data inflates to. Throws
// Error(kInvalidArgument) naming the file.
RgbImage read_png(const std::filesystem::path& path, int max_side = kMaxPngSide);
// The same from the file's bytes; `name` is for messages.
RgbImage decode_png(const std::string& bytes, const std::string& name, int max_side = kMaxPngSide);

// The first max_bytes + 1 bytes of a file (a longer one, or a device, is seen to be too long
// without reading it all), in memory as large as what was read. Throws std::runtime_error.
std::string read_at_most(const std::filesystem::path& path, size_t max_bytes);

// Writes `bytes` to a new temporary file beside `path` (an unpredictable name, created with
// O_CREAT|O_EXCL|O_NOFOLLOW), syncs it and renames it over `path`, so readers never see a
// half-written file and a link planted in the folder cannot redirect the write. A `path` that
// is a symbolic link is refused, not followed. Nothing is left behind on failure. Throws
// anagram::Error: kRuntime when the disk is full or the file size limit is reached (ENOSPC,
// EFBIG, EDQUOT, EIO: a failure while working), kIo otherwise (e.g. no permission).
void write_file_atomic(const std::filesystem::path& path, const std::string& bytes);

}  // namespace anagram
