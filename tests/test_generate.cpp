// generate() end to end on the tiny bundle: each of the method's techniques changes the
// picture, and metadata.json records what a researcher needs to plot them.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "anagram/error.h"
#include "anagram/generate.h"

namespace {

namespace fs = std::filesystem;

std::string read(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

struct Generate : ::testing::Test {
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("anagram_generate_test_" + std::to_string(getpid()));
    fs::remove_all(root_, ec_);
  }
  void TearDown() override { fs::remove_all(root_, ec_); }

  anagram::GenerateOptions options(const std::string& name) const {
    anagram::GenerateOptions o;
    o.bundle = ANAGRAM_DEFAULT_BUNDLE;
    o.prompts = {"a photo of a dog", "a photo of a cat"};
    o.views = {"rot180"};
    o.steps = 3;
    o.out = (root_ / name).string();
    return o;
  }
  // Runs and returns {anagram.png bytes, metadata.json}.
  std::pair<std::string, nlohmann::json> run(const anagram::GenerateOptions& o) const {
    const auto result = anagram::generate(o);
    const fs::path dir = result.sample_dirs.at(0);
    return {read(dir / "anagram.png"), nlohmann::json::parse(read(dir / "metadata.json"))};
  }

  fs::path root_;
  std::error_code ec_;
};

TEST_F(Generate, EachTechniqueChangesThePicture) {
  const auto [full, meta] = run(options("full"));
  auto baseline = options("baseline");
  baseline.method = anagram::Method::kBaseline;
  auto no_antiseg = options("no_antiseg");
  no_antiseg.antiseg = false;
  auto no_balance = options("no_balance");
  no_balance.mtl.balance = false;
  auto no_rectify = options("no_rectify");
  no_rectify.mtl.rectify = false;
  for (const auto* variant : {&baseline, &no_antiseg, &no_balance, &no_rectify}) {
    EXPECT_NE(run(*variant).first, full) << variant->out;
  }

  // What the method did, per step, for plotting.
  const auto& per_step = meta.at("per_step");
  EXPECT_EQ(per_step.at("weights").size(), 3u);
  EXPECT_EQ(per_step.at("scales").size(), 3u);
  EXPECT_EQ(per_step.at("clip_scores").size(), 3u);
  // 26 of 30 scaled to 3 steps is 3, but the last step has no next timestep to optimise for.
  EXPECT_EQ(per_step.at("antiseg_losses").size(), 2u);
  EXPECT_NE(per_step.at("scales")[0].get<double>(), 1.0);
  EXPECT_EQ(meta.at("method").at("name"), "mtl");
  EXPECT_EQ(meta.at("method").at("antiseg_target"), 0.45);
}

TEST_F(Generate, BaselineRecordsEqualWeightsAndUnitScale) {
  auto o = options("baseline_meta");
  o.method = anagram::Method::kBaseline;
  const auto meta = run(o).second;
  for (const auto& w : meta.at("per_step").at("weights")) EXPECT_EQ(w, nlohmann::json({0.5, 0.5}));
  for (const auto& c : meta.at("per_step").at("scales")) EXPECT_EQ(c, 1.0);
  EXPECT_FALSE(meta.at("per_step").contains("antiseg_losses"));
}

TEST_F(Generate, SaveAttentionWritesAMapPerTaskAndStep) {
  auto o = options("attention");
  o.save_attention = true;
  const auto dir = anagram::generate(o).sample_dirs.at(0);
  for (int step = 0; step < 3; ++step) {
    char name[80];
    std::snprintf(name, sizeof name, "attention_step%02d_1_rotate_180_a-photo-of-a-cat.png", step);
    EXPECT_TRUE(fs::exists(dir / name)) << name;
  }
}

TEST_F(Generate, BadMethodInputFailsBeforeWork) {
  auto o = options("bad_concept");
  o.concepts = {"", "giraffe"};
  EXPECT_THROW(anagram::generate(o), anagram::Error);
  EXPECT_FALSE(fs::exists(root_ / "bad_concept"));
  auto p = options("bad_view");
  p.views = {"pixel_permute"};  // no 32x32 map for anti-segregation
  EXPECT_THROW(anagram::generate(p), anagram::Error);
  p.antiseg = false;  // ... which is fine without it
  p.out = (root_ / "pixel_ok").string();
  EXPECT_NO_THROW(anagram::generate(p));
}

}  // namespace
