// anagram/io/image_io.h: model tensors -> 8-bit pictures -> PNG bytes, and atomic file writes.
//
// Basic usage:
//   anagram::RgbImage picture = anagram::to_rgb8(image);      // (3, H, W) in [-1, 1]
//   std::string png = anagram::encode_png(picture);
//   anagram::write_file_atomic("out/anagram.png", png);
//
// Where tensors live: anywhere; to_rgb8 copies its input to the host. RgbImage and every
// function on it (views included: view_of) work on the host only.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "anagram/views/views.h"

namespace anagram {

struct RgbImage {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;  // row-major RGB, 3 bytes per pixel
};

// image: (3, H, W) float in [-1, 1] on any device. Converted as the IF pipeline does:
// round(clamp(x / 2 + 0.5, 0, 1) * 255).
RgbImage to_rgb8(const torch::Tensor& image);

// The picture as seen through `view`. Views act on [-1, 1] pixels, so negate gives 255 - x;
// every other view only moves pixels. Exact.
RgbImage view_of(const View& view, const RgbImage& image);

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

// Reads an 8-bit PNG (grey, RGB or with alpha, which is dropped) as RGB. The file is the
// user's, so it is bounded: at most 64 MiB and max_side pixels a side, checked before decoding.
// Throws Error(kInvalidArgument) naming the file.
RgbImage read_png(const std::filesystem::path& path, int max_side = 4096);

// Writes `bytes` to a temporary file beside `path` and renames it into place, so readers never
// see a half-written file. Throws anagram::Error(kIo).
void write_file_atomic(const std::filesystem::path& path, const std::string& bytes);

}  // namespace anagram
