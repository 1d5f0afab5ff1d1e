// `anagram score`: the metric arithmetic against numpy (scripts/golden/golden_score_metrics.py), the
// scoring CLIP against transformers (scripts/golden/golden_clip_scorer.py), and refusals of bad
// scorer folders.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "anagram/core/error.h"
#include "anagram/eval/metrics.h"
#include "anagram/eval/score.h"
#include "anagram/models/clip_scorer.h"
#include "golden_io.h"

namespace anagram {
namespace {

namespace fs = std::filesystem;

const std::string kScorer = std::string(ANAGRAM_SOURCE_DIR) + "/models/tiny-clip-scorer";

std::vector<double> to_vector(const torch::Tensor& t) {
  const torch::Tensor c = t.to(torch::kDouble).contiguous();
  return {c.data_ptr<double>(), c.data_ptr<double>() + c.numel()};
}

std::vector<std::vector<double>> matrix(const torch::Tensor& t) {
  std::vector<std::vector<double>> m;
  for (int64_t i = 0; i < t.size(0); ++i) m.push_back(to_vector(t[i]));
  return m;
}

TEST(ScoreMetrics, MatchNumpy) {
  const auto g = testing::load_golden(std::string(ANAGRAM_GOLDEN_DIR) + "/score_metrics.pt");
  const double scale = g.at("logit_scale").item<double>();
  for (const std::string n : {"2", "3"}) {
    const torch::Tensor s = g.at("s" + n);
    const auto a = to_vector(g.at("a" + n));
    const auto c = to_vector(g.at("c" + n));
    const auto cv = to_vector(g.at("cv" + n));
    for (int64_t k = 0; k < s.size(0); ++k) {
      const AnagramScore score = score_similarity(matrix(s[k]), scale);
      EXPECT_NEAR(score.alignment, a[k], 1e-12) << n << "x" << n << " sample " << k;
      EXPECT_NEAR(score.concealment, c[k], 1e-12) << n << "x" << n << " sample " << k;
      EXPECT_NEAR(score.concealment_views, cv[k], 1e-12) << n << "x" << n << " sample " << k;
    }
  }
  const auto a2 = to_vector(g.at("a2"));
  const auto c2 = to_vector(g.at("c2"));
  EXPECT_NEAR(mean_of(a2), g.at("a2_mean").item<double>(), 1e-12);
  EXPECT_NEAR(quantile(a2, 0.9), g.at("a2_q90").item<double>(), 1e-12);
  EXPECT_NEAR(quantile(a2, 0.95), g.at("a2_q95").item<double>(), 1e-12);
  EXPECT_NEAR(mean_of(c2), g.at("c2_mean").item<double>(), 1e-12);
  EXPECT_NEAR(quantile(c2, 0.9), g.at("c2_q90").item<double>(), 1e-12);
  EXPECT_NEAR(quantile(c2, 0.95), g.at("c2_q95").item<double>(), 1e-12);
  const auto q90 = [](const std::vector<double>& v) { return quantile(v, 0.9); };
  const std::vector<std::tuple<std::string, std::vector<double>, Interval>> intervals = {
      {"a2_mean_ci", a2, bootstrap_interval(a2, mean_of)},
      {"a2_q90_ci", a2, bootstrap_interval(a2, q90)},
      {"c2_mean_ci", c2, bootstrap_interval(c2, mean_of)}};
  for (const auto& [name, values, ci] : intervals) {
    const auto expected = to_vector(g.at(name));
    EXPECT_NEAR(ci.low, expected[0], 1e-12) << name;
    EXPECT_NEAR(ci.high, expected[1], 1e-12) << name;
    EXPECT_LE(ci.low, ci.high) << name;
  }
}

TEST(ScoreMetrics, HandChecked) {
  // A perfect anagram: each view matches its own prompt far better than the other.
  const AnagramScore clear = score_similarity({{0.35, 0.05}, {0.05, 0.35}}, 100.0);
  EXPECT_DOUBLE_EQ(clear.alignment, 0.35);
  EXPECT_NEAR(clear.concealment, 1.0 / (1.0 + std::exp(-30.0)), 1e-15);
  // One concept dominates: both views look like prompt 0.
  const AnagramScore dominated = score_similarity({{0.35, 0.05}, {0.35, 0.05}}, 100.0);
  EXPECT_DOUBLE_EQ(dominated.alignment, 0.05);
  EXPECT_LT(dominated.concealment, 0.51);
  EXPECT_DOUBLE_EQ(quantile({3, 1, 2, 4}, 0.5), 2.5);
  EXPECT_DOUBLE_EQ(quantile({5}, 0.95), 5);
  EXPECT_THROW(score_similarity({{0.1, 0.2}}, 100.0), Error);
  EXPECT_THROW(score_similarity({{NAN}}, 100.0), Error);
  EXPECT_THROW(quantile({}, 0.9), Error);
  // Same seed, same interval; another seed, (almost surely) another.
  const std::vector<double> v = {0.1, 0.4, 0.2, 0.9, 0.3, 0.25, 0.6};
  const Interval a = bootstrap_interval(v, mean_of, 200, 1);
  const Interval b = bootstrap_interval(v, mean_of, 200, 1);
  const Interval c = bootstrap_interval(v, mean_of, 200, 2);
  EXPECT_EQ(a.low, b.low);
  EXPECT_EQ(a.high, b.high);
  EXPECT_NE(a.low, c.low);
  EXPECT_LT(a.low, mean_of(v));
  EXPECT_GT(a.high, mean_of(v));
}

TEST(ClipScorer, MatchesTransformers) {
  const auto g = testing::load_golden(std::string(ANAGRAM_GOLDEN_DIR) + "/clip_scorer.pt");
  const ClipScorer scorer = ClipScorer::load(kScorer, torch::kCPU);
  EXPECT_EQ(scorer.manifest().image_size, 32);
  EXPECT_NEAR(scorer.manifest().logit_scale, 100.0, 1e-4);
  const torch::Tensor images = g.at("image_u8");
  EXPECT_LT(testing::max_abs_diff(scorer.preprocess(images), g.at("pixels")), 1e-5);
  const torch::Tensor image_embeds = g.at("image_embeds");
  const torch::Tensor unit_images = image_embeds / image_embeds.norm(2, -1, true);
  EXPECT_LT(testing::max_abs_diff(scorer.embed_images(images), unit_images), 1e-5);
  const std::vector<std::string> prompts = {"a photo of a dog", "an oil painting of a cat",
                                            "A Fox!"};
  const torch::Tensor text_embeds = g.at("text_embeds");
  EXPECT_LT(testing::max_abs_diff(scorer.embed_texts(prompts),
                                  text_embeds / text_embeds.norm(2, -1, true)),
            1e-5);
  EXPECT_LT(testing::max_abs_diff(scorer.similarity(images, prompts), g.at("similarity")), 1e-5);
}

class BadScorer : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("anagram_bad_scorer_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::copy(kScorer, dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  void edit_json(const std::function<void(nlohmann::json&)>& edit) {
    std::ifstream in(dir_ / "scorer.json");
    nlohmann::json j = nlohmann::json::parse(in);
    edit(j);
    std::ofstream(dir_ / "scorer.json") << j.dump();
  }
  void expect_refused(const std::string& fragment) {
    try {
      ClipScorer::load(dir_, torch::kCPU);
      FAIL() << "accepted; expected: " << fragment;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kBundle);
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  }
  fs::path dir_;
};

TEST_F(BadScorer, PathsLeavingTheFolder) {
  edit_json([](nlohmann::json& j) { j["text_encoder"] = "../../etc/passwd"; });
  expect_refused("leaves the scorer folder");
}

TEST_F(BadScorer, TamperedFile) {
  {
    std::fstream f(dir_ / "image_encoder.pt", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(5000);
    f.put('\x7f');
  }
  expect_refused("SHA-256");
}

TEST_F(BadScorer, AbsurdValues) {
  edit_json([](nlohmann::json& j) { j["image_size"] = 1 << 20; });
  expect_refused("image_size");
}

TEST_F(BadScorer, WrongTypesAndFormat) {
  edit_json([](nlohmann::json& j) { j["image_mean"] = {0.5, "x", 0.5}; });
  expect_refused("image_mean");
  fs::copy_file(kScorer + "/scorer.json", dir_ / "scorer.json",
                fs::copy_options::overwrite_existing);
  edit_json([](nlohmann::json& j) { j["format"] = "anagram-bundle"; });
  expect_refused("format");
}

TEST_F(BadScorer, WrongEmbeddingSize) {
  edit_json([](nlohmann::json& j) { j["embed_dim"] = 17; });
  expect_refused("returns shape");
}

TEST(ScoreSamples, MethodLabels) {
  GenerateRequest r;
  EXPECT_EQ(method_label(r), "mtl");
  r.antiseg = false;
  r.mtl.rectify = false;
  EXPECT_EQ(method_label(r), "mtl-no-antiseg-no-rectify");
  r.method = Method::kBaseline;
  EXPECT_EQ(method_label(r), "baseline");
}

TEST(ScoreSamples, SelectBestPerSet) {
  std::vector<ScoredSample> samples(5);
  const double alignments[] = {0.2, 0.3, 0.1, 0.25, 0.4};
  for (size_t i = 0; i < samples.size(); ++i) {
    samples[i].group = i < 4 ? "mtl" : "baseline";
    samples[i].prompts = {"a", "b"};
    samples[i].score.alignment = alignments[i];
  }
  select_best(samples, 2);
  EXPECT_FALSE(samples[0].selected);
  EXPECT_TRUE(samples[1].selected);
  EXPECT_FALSE(samples[2].selected);
  EXPECT_TRUE(samples[3].selected);
  EXPECT_TRUE(samples[4].selected);  // alone in its set
}

}  // namespace
}  // namespace anagram
