// CLIP BPE tokenizer: exact ids against GLIDE's SimpleTokenizer (tests/golden/clip_tokenizer.json,
// made by scripts/golden/golden_clip_tokenizer.py), and errors for bad vocabularies and bad text.
#include <gtest/gtest.h>
#include <zlib.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "anagram/core/error.h"
#include "anagram/text/clip_tokenizer.h"
#include "core/sha256.h"

namespace fs = std::filesystem;
using anagram::ClipTokenizer;
using anagram::Error;
using anagram::ErrorKind;
using nlohmann::json;

namespace {

const std::string kVocabPath =
    std::string(ANAGRAM_SOURCE_DIR) + "/models/tiny-if/bpe_simple_vocab_16e6.txt.gz";

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

const json& golden() {
  static const json data =
      json::parse(read_file(fs::path(ANAGRAM_GOLDEN_DIR) / "clip_tokenizer.json"));
  return data;
}

const ClipTokenizer& glide_tokenizer() {
  static const ClipTokenizer tok = ClipTokenizer::load(kVocabPath);
  return tok;
}

// The text with non-ASCII and control characters escaped, for failure messages.
std::string printable(const std::string& text) {
  std::string out;
  for (unsigned char c : text.substr(0, 80)) {
    char hex[8];
    std::snprintf(hex, sizeof(hex), "\\x%02x", c);
    out += (c >= 0x20 && c < 0x7F) ? std::string(1, static_cast<char>(c)) : std::string(hex);
  }
  return out + (text.size() > 80 ? "..." : "");
}

template <typename F>
void expect_error(ErrorKind kind, F&& f) {
  try {
    f();
    ADD_FAILURE() << "no anagram::Error thrown";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
  }
}

class ClipTokenizerVocabFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        fs::temp_directory_path() /
        ("anagram_clip_test_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
         "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_, ec_);
    fs::create_directories(dir_, ec_);
  }
  void TearDown() override { fs::remove_all(dir_, ec_); }

  std::error_code ec_;  // set-up and clean-up of the scratch folder must not throw

  std::string write(const std::string& name, const std::string& bytes) {
    std::ofstream(dir_ / name, std::ios::binary) << bytes;
    return (dir_ / name).string();
  }
  std::string write_gzip(const std::string& name, const std::string& text) {
    const std::string path = (dir_ / name).string();
    gzFile f = gzopen(path.c_str(), "wb");
    gzwrite(f, text.data(), static_cast<unsigned>(text.size()));
    gzclose(f);
    return path;
  }

  fs::path dir_;
};

}  // namespace

TEST(ClipTokenizer, VocabularyIsGlides) {
  ASSERT_TRUE(fs::exists(kVocabPath)) << kVocabPath;
  EXPECT_EQ(anagram::detail::sha256_hex(read_file(kVocabPath)),
            golden()["vocab_sha256"].get<std::string>());
  const ClipTokenizer& tok = glide_tokenizer();
  EXPECT_EQ(tok.context_length(), 77);
  EXPECT_EQ(tok.context_length(), golden()["context_length"].get<int>());
  EXPECT_EQ(tok.start_token(), golden()["start_token"].get<int64_t>());
  EXPECT_EQ(tok.end_token(), golden()["end_token"].get<int64_t>());
  EXPECT_EQ(tok.vocab_size(), golden()["vocab_size"].get<int64_t>());
  EXPECT_EQ(tok.pad_token(), 0);
}

TEST(ClipTokenizer, MatchesGlideGoldens) {
  const ClipTokenizer& glide = glide_tokenizer();
  ASSERT_GE(golden()["cases"].size(), 30u);
  for (const json& c : golden()["cases"]) {
    const std::string text = c["text"].get<std::string>();
    const int context = c["context_length"].get<int>();
    SCOPED_TRACE("text \"" + printable(text) + "\", context " + std::to_string(context));
    const ClipTokenizer tok =
        context == glide.context_length() ? glide : ClipTokenizer::load(kVocabPath, context);
    EXPECT_EQ(ClipTokenizer::clean(text), c["clean"].get<std::string>());
    EXPECT_EQ(tok.encode_plain(text), c["plain"].get<std::vector<int64_t>>());
    const ClipTokenizer::Encoding enc = tok.encode(text);
    EXPECT_EQ(enc.tokens, c["tokens"].get<std::vector<int64_t>>());
    EXPECT_EQ(enc.length, c["length"].get<int64_t>());
    ASSERT_EQ(enc.tokens.size(), static_cast<size_t>(context));
    EXPECT_EQ(enc.tokens[enc.length - 1], tok.end_token());  // where TextEncoder reads features
  }
}

TEST(ClipTokenizer, TruncatesToContextAndKeepsEndToken) {
  const ClipTokenizer& tok = glide_tokenizer();
  std::string text;
  for (int i = 0; i < 100; ++i) text += "dog ";
  const ClipTokenizer::Encoding enc = tok.encode(text);
  ASSERT_EQ(enc.tokens.size(), 77u);
  EXPECT_EQ(enc.length, 77);
  EXPECT_EQ(enc.tokens.front(), tok.start_token());
  EXPECT_EQ(enc.tokens.back(), tok.end_token());
  EXPECT_EQ(tok.encode_plain(text).size(), 100u);  // encode_plain does not truncate
}

TEST(ClipTokenizer, CopiesShareTheCacheSafelyAcrossThreads) {
  const ClipTokenizer tok = glide_tokenizer();
  const std::vector<int64_t> expected = tok.encode_plain("a snowy mountain village at dusk");
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&tok, &expected, &mismatches] {
      for (int i = 0; i < 50; ++i) {
        if (tok.encode_plain("a snowy mountain village at dusk") != expected) ++mismatches;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(ClipTokenizer, RejectsInvalidUtf8) {
  const ClipTokenizer& tok = glide_tokenizer();
  for (const std::string bad : {"\xff", "caf\xc3", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80",
                                "\xf4\x90\x80\x80", "a\x80z", "\xe6\x9d"}) {
    SCOPED_TRACE(printable(bad));
    expect_error(ErrorKind::kInvalidArgument, [&] { tok.encode(bad); });
    expect_error(ErrorKind::kInvalidArgument, [&] { tok.encode_plain(bad); });
    expect_error(ErrorKind::kInvalidArgument, [&] { ClipTokenizer::clean(bad); });
  }
  EXPECT_NO_THROW(tok.encode("\xf0\x9f\x90\xb6 \xe6\x9d\xb1 \x7f"));  // 🐶 東 DEL
}

TEST(ClipTokenizer, RejectsContextShorterThanTwo) {
  expect_error(ErrorKind::kInvalidArgument, [] { ClipTokenizer::load(kVocabPath, 1); });
  const ClipTokenizer tok = ClipTokenizer::load(kVocabPath, 2);
  const ClipTokenizer::Encoding enc = tok.encode("a dog");
  EXPECT_EQ(enc.tokens, (std::vector<int64_t>{tok.start_token(), tok.end_token()}));
  EXPECT_EQ(enc.length, 2);
}

TEST_F(ClipTokenizerVocabFile, MissingFileIsBundleError) {
  expect_error(ErrorKind::kBundle, [&] { ClipTokenizer::load((dir_ / "absent.txt.gz").string()); });
}

TEST_F(ClipTokenizerVocabFile, PlainTextIsBundleError) {
  const std::string path = write("plain.txt", "#version: 0.2\ni n\nt h\n");
  expect_error(ErrorKind::kBundle, [&] { ClipTokenizer::load(path); });
}

TEST_F(ClipTokenizerVocabFile, TruncatedGzipIsBundleError) {
  const std::string bytes = read_file(kVocabPath);
  ASSERT_GT(bytes.size(), 1000u);
  const std::string path = write("truncated.txt.gz", bytes.substr(0, bytes.size() / 2));
  expect_error(ErrorKind::kBundle, [&] { ClipTokenizer::load(path); });
}

TEST_F(ClipTokenizerVocabFile, CorruptGzipIsBundleError) {
  std::string bytes = read_file(kVocabPath);
  ASSERT_GT(bytes.size(), 1000u);
  for (size_t i = 100; i < 200; ++i) bytes[i] = static_cast<char>(bytes[i] ^ 0x5A);
  const std::string path = write("corrupt.txt.gz", bytes);
  expect_error(ErrorKind::kBundle, [&] { ClipTokenizer::load(path); });
}

TEST_F(ClipTokenizerVocabFile, TooFewOrMalformedMergesIsBundleError) {
  expect_error(ErrorKind::kBundle, [&] {
    ClipTokenizer::load(write_gzip("short.txt.gz", "#version: 0.2\ni n\nt h\n"));
  });
  std::string text = "#version: 0.2\n";
  for (int i = 0; i < 48894; ++i) text += i == 7 ? "one-symbol\n" : "i n\n";
  expect_error(ErrorKind::kBundle, [&] { ClipTokenizer::load(write_gzip("bad.txt.gz", text)); });
  expect_error(ErrorKind::kBundle, [&] {
    ClipTokenizer::load(write_gzip("utf8.txt.gz", "#version: 0.2\n\xff\xfe n\n"));
  });
}
