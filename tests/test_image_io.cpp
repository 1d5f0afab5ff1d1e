// PNG output: the generation parameters travel inside the file as an iTXt chunk with a valid
// CRC, and the picture still decodes to the same pixels.
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstring>

#include "anagram/io/image_io.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_STATIC
#include <stb_image.h>
#pragma GCC diagnostic pop

namespace {

uint32_t be32(const std::string& bytes, size_t at) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(bytes[at + i]);
  return v;
}

TEST(ImageIo, PngCarriesParametersAndStillDecodes) {
  anagram::RgbImage image;
  image.width = 5;
  image.height = 3;
  for (int i = 0; i < 5 * 3 * 3; ++i) image.pixels.push_back(static_cast<uint8_t>(i * 7));
  const std::string text = R"({"request": {"prompts": ["caf\u00e9", "a cat"]}})";
  const std::string png = anagram::encode_png(image, {{"parameters", text}});
  EXPECT_EQ(png, anagram::encode_png(image, {{"parameters", text}}));  // deterministic

  // Walk the chunks: iTXt right after IHDR, with its CRC.
  ASSERT_EQ(png.substr(12, 4), "IHDR");
  const size_t at = 8 + 25;
  const uint32_t length = be32(png, at);
  ASSERT_EQ(png.substr(at + 4, 4), "iTXt");
  const std::string data = png.substr(at + 8, length);
  EXPECT_EQ(data, std::string("parameters\0\0\0\0\0", 15) + text);
  const uint32_t crc = static_cast<uint32_t>(
      crc32(0L, reinterpret_cast<const Bytef*>(png.data() + at + 4), length + 4));
  EXPECT_EQ(be32(png, at + 8 + length), crc);

  int w = 0, h = 0, channels = 0;
  unsigned char* decoded =
      stbi_load_from_memory(reinterpret_cast<const stbi_uc*>(png.data()),
                            static_cast<int>(png.size()), &w, &h, &channels, 3);
  ASSERT_NE(decoded, nullptr);
  EXPECT_EQ(w, 5);
  EXPECT_EQ(h, 3);
  EXPECT_EQ(std::memcmp(decoded, image.pixels.data(), image.pixels.size()), 0);
  stbi_image_free(decoded);
}

}  // namespace
