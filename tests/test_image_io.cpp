// PNG output: the generation parameters travel inside the file as an iTXt chunk with a valid
// CRC, and the picture still decodes to the same pixels. PNG input: bounded before decoding,
// and a file whose data inflates far beyond its pixels costs only its pixels. Atomic writes:
// unpredictable temporary names never opened through a link, a final name that is a link
// refused, a file size limit reported as a failure while working with nothing left behind.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>
#include <zlib.h>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "anagram/core/error.h"
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

namespace fs = std::filesystem;

std::string png_chunk(const std::string& kind, const std::string& data) {
  std::string out;
  const auto be = [&](uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
  };
  be(static_cast<uint32_t>(data.size()));
  const std::string typed = kind + data;
  out += typed;
  be(static_cast<uint32_t>(
      crc32(0L, reinterpret_cast<const Bytef*>(typed.data()), static_cast<uInt>(typed.size()))));
  return out;
}

// An RGB PNG header of width x height followed by `zlib_data` as its one IDAT chunk.
std::string png_with(uint32_t width, uint32_t height, const std::string& zlib_data) {
  std::string ihdr;
  for (uint32_t v : {width, height}) {
    for (int shift = 24; shift >= 0; shift -= 8) ihdr.push_back(static_cast<char>(v >> shift));
  }
  ihdr += std::string("\x08\x02\x00\x00\x00", 5);
  return std::string("\x89PNG\r\n\x1a\n", 8) + png_chunk("IHDR", ihdr) +
         png_chunk("IDAT", zlib_data) + png_chunk("IEND", "");
}

// `bytes` zero bytes, zlib-compressed, without holding them.
std::string compressed_zeros(size_t bytes) {
  z_stream z{};
  deflateInit(&z, 9);
  const std::string zeros(1 << 20, '\0');
  std::string out;
  char buffer[1 << 16];
  for (size_t left = bytes; left > 0 || z.avail_in > 0;) {
    if (z.avail_in == 0) {
      const size_t n = std::min(left, zeros.size());
      z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(zeros.data()));
      z.avail_in = static_cast<uInt>(n);
      left -= n;
    }
    z.next_out = reinterpret_cast<Bytef*>(buffer);
    z.avail_out = sizeof buffer;
    deflate(&z, Z_NO_FLUSH);
    out.append(buffer, sizeof buffer - z.avail_out);
  }
  int status;
  do {
    z.next_out = reinterpret_cast<Bytef*>(buffer);
    z.avail_out = sizeof buffer;
    status = deflate(&z, Z_FINISH);
    out.append(buffer, sizeof buffer - z.avail_out);
  } while (status == Z_OK);
  deflateEnd(&z);
  return out;
}

long status_kib(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
  }
  return -1;
}

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() /
           ("anagram_image_io_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

TEST(ImageIo, ReadsWhatItWrites) {
  anagram::RgbImage image;
  image.width = 7;
  image.height = 5;
  for (int i = 0; i < 7 * 5 * 3; ++i) image.pixels.push_back(static_cast<uint8_t>(i * 11));
  const anagram::RgbImage back = anagram::decode_png(anagram::encode_png(image), "x.png");
  EXPECT_EQ(back.width, 7);
  EXPECT_EQ(back.height, 5);
  EXPECT_EQ(back.pixels, image.pixels);
}

TEST(ImageIo, PngSizeIsCheckedBeforeDecoding) {
  // Claims 100000 x 100000 pixels (30 GB decoded) in a few bytes.
  const std::string png = png_with(100000, 100000, compressed_zeros(1000));
  try {
    anagram::decode_png(png, "huge.png");
    FAIL();
  } catch (const anagram::Error& e) {
    EXPECT_NE(std::string(e.what()).find("at most 4096 a side"), std::string::npos) << e.what();
  }
  EXPECT_THROW(anagram::decode_png("not a png", "x.png"), anagram::Error);
  EXPECT_THROW(anagram::decode_png(png_with(16, 16, "garbage"), "x.png"), anagram::Error);
}

TEST(ImageIo, PngInflatingFarBeyondItsPixelsCostsOnlyItsPixels) {
  // 16x16 pixels need 784 bytes; the data inflates to 512 MiB.
  TempDir dir;
  const fs::path file = dir.path / "bomb.png";
  {
    std::ofstream out(file, std::ios::binary);
    out << png_with(16, 16, compressed_zeros(size_t{512} << 20));
  }
  // Reset the peak resident size (Linux: 5 > /proc/self/clear_refs), then read.
  { std::ofstream("/proc/self/clear_refs") << "5"; }
  const long before = status_kib("VmHWM");
  ASSERT_GT(before, 0);
  try {
    const anagram::RgbImage image = anagram::read_png(file);
    EXPECT_EQ(image.width, 16);
  } catch (const anagram::Error&) {
    // Refusing it is as good as reading it.
  }
  EXPECT_LT(status_kib("VmHWM") - before, 64 * 1024) << "KiB more at the peak";
}

TEST(WriteFileAtomic, NeverWritesThroughLinksPlantedAtTemporaryNames) {
  TempDir dir;
  const fs::path victim = dir.path / "victim";
  { std::ofstream(victim) << "mine"; }
  // The names a PID-based temporary file would take, for this process and the next ones.
  for (int pid = getpid(); pid < getpid() + 50; ++pid) {
    fs::create_symlink(victim, dir.path / (".out.txt.tmp-" + std::to_string(pid)));
  }
  anagram::write_file_atomic(dir.path / "out.txt", "new bytes");
  EXPECT_EQ(slurp(victim), "mine");
  EXPECT_EQ(slurp(dir.path / "out.txt"), "new bytes");
  anagram::write_file_atomic(dir.path / "out.txt", "replaced");
  EXPECT_EQ(slurp(dir.path / "out.txt"), "replaced");
  size_t entries = 0;
  for (auto it = fs::directory_iterator(dir.path); it != fs::directory_iterator(); ++it) ++entries;
  EXPECT_EQ(entries, 2u + 50u) << "a temporary file was left behind";
}

TEST(WriteFileAtomic, AFinalNameThatIsALinkIsRefused) {
  TempDir dir;
  const fs::path victim = dir.path / "victim";
  { std::ofstream(victim) << "mine"; }
  fs::create_symlink(victim, dir.path / "out.txt");
  try {
    anagram::write_file_atomic(dir.path / "out.txt", "new bytes");
    FAIL();
  } catch (const anagram::Error& e) {
    EXPECT_EQ(e.kind(), anagram::ErrorKind::kIo);
    EXPECT_NE(std::string(e.what()).find("symbolic link"), std::string::npos) << e.what();
  }
  EXPECT_EQ(slurp(victim), "mine");
  EXPECT_TRUE(fs::is_symlink(dir.path / "out.txt"));
}

TEST(WriteFileAtomic, AFileSizeLimitIsAFailureWhileWorkingAndLeavesNothing) {
  TempDir dir;
  std::signal(SIGXFSZ, SIG_IGN);  // as the program does
  rlimit old{};
  getrlimit(RLIMIT_FSIZE, &old);
  rlimit limit = old;
  limit.rlim_cur = 1000;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &limit), 0);
  try {
    anagram::write_file_atomic(dir.path / "big.bin", std::string(5000, 'x'));
    ADD_FAILURE() << "wrote past the limit";
  } catch (const anagram::Error& e) {
    EXPECT_EQ(e.kind(), anagram::ErrorKind::kRuntime) << e.what();  // exit 1, not 2
    EXPECT_NE(std::string(e.what()).find("File too large"), std::string::npos) << e.what();
  }
  setrlimit(RLIMIT_FSIZE, &old);
  EXPECT_TRUE(fs::is_empty(dir.path)) << "a partial file was left";
}

}  // namespace
