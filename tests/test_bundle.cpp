// Manifest validation: every problem is caught before loading, with a message naming it.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "anagram/core/dtype.h"
#include "anagram/core/error.h"
#include "anagram/models/bundle.h"
#include "core/sha256.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

json valid_manifest() {
  return json::parse(R"({
    "format": "anagram-bundle", "schema_version": 1, "name": "test", "stage": 1,
    "dtype": "float32", "image": {"size": 64, "channels": 3},
    "unet": {"file": "unet.pt", "in_channels": 3, "out_channels": 6,
             "attention": {"query_resolution": 32, "num_layers": 3, "text_tokens": 77}},
    "text_encoder": {"file": "text_encoder.pt", "hidden_size": 32},
    "tokenizer": {"file": "spiece.model", "max_length": 77},
    "scheduler": {"num_train_timesteps": 1000}
  })");
}

class BundleManifest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("anagram_bundle_test_" +
            std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_, ec_);
    fs::create_directories(dir_, ec_);
    for (const char* f : {"unet.pt", "text_encoder.pt", "spiece.model"})
      std::ofstream(dir_ / f) << "x";
  }
  void TearDown() override { fs::remove_all(dir_, ec_); }

  std::error_code ec_;  // set-up and clean-up of the scratch folder must not throw

  void write(const json& manifest) { std::ofstream(dir_ / "manifest.json") << manifest.dump(); }

  // Expects read_manifest to throw a kBundle error whose message contains `needle`.
  void expect_error(const std::string& needle) {
    try {
      anagram::read_manifest(dir_);
      FAIL() << "expected an error containing '" << needle << "'";
    } catch (const anagram::Error& e) {
      EXPECT_EQ(e.kind(), anagram::ErrorKind::kBundle);
      EXPECT_EQ(e.exit_code(), 2);
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << "one line only";
    }
  }

  fs::path dir_;
};

}  // namespace

TEST_F(BundleManifest, ValidManifestParses) {
  write(valid_manifest());
  const anagram::Manifest m = anagram::read_manifest(dir_);
  EXPECT_EQ(m.name, "test");
  EXPECT_EQ(m.stage(1).image_size, 64);
  EXPECT_EQ(m.stage(1).unet.attention->query_resolution, 32);
  EXPECT_FALSE(m.has_stage(2));
  EXPECT_TRUE(m.files.empty());  // schema 1: no hashes
  EXPECT_EQ(m.sha256.size(), 64u);
}

TEST_F(BundleManifest, Sha256OfManifestBytes) {
  // Known answer for the empty message and "abc" (FIPS 180-2 examples) via a manifest whose
  // bytes we control is awkward; check that two different manifests hash differently and the
  // same bytes hash the same.
  write(valid_manifest());
  const auto first = anagram::read_manifest(dir_).sha256;
  EXPECT_EQ(first, anagram::read_manifest(dir_).sha256);
  json other = valid_manifest();
  other["name"] = "other";
  write(other);
  EXPECT_NE(first, anagram::read_manifest(dir_).sha256);
}

TEST_F(BundleManifest, MissingManifest) { expect_error("has no manifest.json"); }

TEST_F(BundleManifest, NotJson) {
  std::ofstream(dir_ / "manifest.json") << "{ not json";
  expect_error("not valid JSON");
}

TEST_F(BundleManifest, UnknownSchemaVersion) {
  json m = valid_manifest();
  m["schema_version"] = 99;
  write(m);
  expect_error("'schema_version': unknown version 99");
}

TEST_F(BundleManifest, MissingKeyIsNamed) {
  json m = valid_manifest();
  m["unet"].erase("in_channels");
  write(m);
  expect_error("unet.in_channels");
}

TEST_F(BundleManifest, WrongTypeIsNamed) {
  json m = valid_manifest();
  m["image"]["size"] = "big";
  write(m);
  expect_error("image.size");
}

TEST_F(BundleManifest, MissingFile) {
  fs::remove(dir_ / "text_encoder.pt", ec_);
  write(valid_manifest());
  expect_error("'text_encoder.file': file 'text_encoder.pt' does not exist");
}

TEST_F(BundleManifest, PathLeavingBundle) {
  json m = valid_manifest();
  m["unet"]["file"] = "../unet.pt";
  write(m);
  expect_error("leaves the bundle folder");
}

TEST_F(BundleManifest, AbsolutePath) {
  json m = valid_manifest();
  m["tokenizer"]["file"] = "/etc/passwd";
  write(m);
  expect_error("relative to the bundle folder");
}

TEST_F(BundleManifest, UnknownDtype) {
  json m = valid_manifest();
  m["dtype"] = "float8";
  write(m);
  expect_error("dtype");
}

TEST_F(BundleManifest, ChannelsMustFitStageOne) {
  json m = valid_manifest();
  m["unet"]["out_channels"] = 3;
  write(m);
  expect_error("unet.out_channels");
}

TEST(BundleDtype, ParsesNames) {
  EXPECT_EQ(anagram::parse_dtype("float16"), c10::ScalarType::Half);
  EXPECT_EQ(anagram::parse_dtype("bf16"), c10::ScalarType::BFloat16);
  EXPECT_EQ(anagram::dtype_name(c10::ScalarType::Float), "float32");
  EXPECT_THROW(anagram::parse_dtype("int8"), anagram::Error);
}

// SHA-256 known answers (FIPS 180-2 appendix B) for both implementations, whole and in pieces.
TEST(Sha256, KnownAnswersForBothImplementations) {
  const std::string million_a(1000000, 'a');
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
      {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
      {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
      {million_a, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"}};
  for (bool portable : {true, false}) {
    for (const auto& [text, expected] : cases) {
      anagram::detail::Sha256 whole(portable);
      whole.update(text.data(), text.size());
      EXPECT_EQ(whole.hex_digest(), expected) << portable;
      anagram::detail::Sha256 pieces(portable);
      for (size_t i = 0; i < text.size(); i += 37) {
        pieces.update(text.data() + i, std::min<size_t>(37, text.size() - i));
      }
      EXPECT_EQ(pieces.hex_digest(), expected) << portable;
    }
  }
}
