// The method's combiner: noise-aware CLIP scores against GLIDE's (Python) on the tiny CLIP,
// balancing weights, rectification scale, and the combination itself.
#include <gtest/gtest.h>

#include "anagram/core/error.h"
#include "anagram/diffusion/mtl_combiner.h"
#include "anagram/models/bundle.h"
#include "anagram/models/noise_aware_clip.h"
#include "golden_io.h"
#include "tiny_bundle.h"

namespace {

using anagram::testing::max_abs_diff;
using anagram::testing::relative_diff;

using anagram::MtlOptions;
using anagram::MultiTaskCombiner;

std::string utf8(const torch::Tensor& bytes) {
  return std::string(reinterpret_cast<const char*>(bytes.data_ptr<uint8_t>()), bytes.numel());
}

struct ClipGolden : ::testing::Test {
  static void SetUpTestSuite() {
    golden_ = new std::map<std::string, torch::Tensor>(
        anagram::testing::load_golden(std::string(ANAGRAM_GOLDEN_DIR) + "/clip_tiny.pt"));
    clip_ = new anagram::NoiseAwareClip(
        anagram::NoiseAwareClip::load(anagram::read_manifest(ANAGRAM_DEFAULT_BUNDLE), torch::kCPU));
  }
  static void TearDownTestSuite() {
    delete clip_;
    delete golden_;
  }
  static const torch::Tensor& golden(const std::string& name) { return golden_->at(name); }
  static std::map<std::string, torch::Tensor>* golden_;
  static const anagram::NoiseAwareClip* clip_;
};
std::map<std::string, torch::Tensor>* ClipGolden::golden_ = nullptr;
const anagram::NoiseAwareClip* ClipGolden::clip_ = nullptr;

TEST_F(ClipGolden, TextEmbeddingsMatchGlide) {
  std::vector<std::string> texts;
  for (int i = 0; i < golden("text_emb").size(0); ++i) {
    texts.push_back(utf8(golden("text_utf8_" + std::to_string(i))));
  }
  EXPECT_LT(max_abs_diff(clip_->embed_texts(texts), golden("text_emb")), 1e-5);
}

TEST_F(ClipGolden, ImageEmbeddingsMatchGlide) {
  const auto& images = golden("image");
  for (int64_t i = 0; i < images.size(0); ++i) {
    const int64_t t = golden("image_t")[i].item<int64_t>();
    EXPECT_LT(max_abs_diff(clip_->embed_images(images.narrow(0, i, 1), t),
                           golden("image_emb").narrow(0, i, 1)),
              1e-5)
        << "image " << i;
  }
}

TEST_F(ClipGolden, TaskScoresAndWeightsMatchThePublishedCode) {
  const auto text = clip_->embed_texts({"dog", "cat"});
  const int64_t t = golden("task_t").item<int64_t>();
  const auto published = clip_->scores(golden("task_x"), t, text, /*published_input=*/true);
  EXPECT_LT(max_abs_diff(published, golden("task_scores_published")), 1e-5);
  const auto clean = clip_->scores(golden("task_x"), t, text, /*published_input=*/false);
  EXPECT_LT(max_abs_diff(clean, golden("task_scores_clean")), 1e-5);

  MultiTaskCombiner combiner(MtlOptions{}, [&](const torch::Tensor& view_inputs, int64_t timestep) {
    return clip_->scores(view_inputs, timestep, text, /*published_input=*/true);
  });
  const int step = static_cast<int>(golden("task_step").item<int64_t>());
  EXPECT_LT(
      max_abs_diff(combiner.balancing_weights(published, step, 30), golden("task_alpha_published")),
      1e-6);
}

TEST(MtlCombiner, BalancingWeightsFollowTheFormula) {
  MtlOptions options;
  options.balance = false;  // no CLIP needed to test the formula
  MultiTaskCombiner combiner(options);
  const auto scores = torch::tensor({0.2f, 0.4f, 0.8f});
  // Published quirk: exponent -(1 + i/30) whatever the step count.
  const double exponent = -(1.0 + 6.0 / 30.0);
  auto expected =
      torch::tensor({std::pow(0.2, exponent), std::pow(0.4, exponent), std::pow(0.8, exponent)});
  expected = expected / expected.sum();
  EXPECT_LT(max_abs_diff(combiner.balancing_weights(scores, 6, 10), expected), 1e-6);
  // The less complete task (lower score) gets more weight.
  const auto w = combiner.balancing_weights(scores, 6, 10);
  EXPECT_GT(w[0].item<float>(), w[1].item<float>());
  EXPECT_GT(w[1].item<float>(), w[2].item<float>());

  options.exact_steps_exponent = true;
  MultiTaskCombiner exact(options);
  const double exact_exponent = -(1.0 + 6.0 / 10.0);
  auto expected_exact = torch::tensor({std::pow(0.2, exact_exponent), std::pow(0.4, exact_exponent),
                                       std::pow(0.8, exact_exponent)});
  expected_exact = expected_exact / expected_exact.sum();
  EXPECT_LT(max_abs_diff(exact.balancing_weights(scores, 6, 10), expected_exact), 1e-6);
}

TEST(MtlCombiner, NonPositiveScoresGiveFiniteWeights) {
  MtlOptions options;
  options.balance = false;
  MultiTaskCombiner combiner(options);
  const auto w = combiner.balancing_weights(torch::tensor({-0.3f, 0.0f, 0.5f}), 3, 30);
  EXPECT_TRUE(torch::isfinite(w).all().item<bool>());
  EXPECT_NEAR(w.sum().item<float>(), 1.0f, 1e-6);
}

TEST(MtlCombiner, RectificationScaleFollowsTheFormula) {
  torch::manual_seed(0);
  const auto eps = torch::randn({3, 3, 16, 16});
  const auto w = torch::tensor({0.5f, 0.3f, 0.2f});
  const auto flat = eps.reshape({3, -1}).to(torch::kDouble);
  double variance = 0;
  for (int k = 0; k < 3; ++k) {
    variance += std::pow(w[k].item<double>(), 2);
    for (int l = k + 1; l < 3; ++l) {
      const double rho = (flat[k] * flat[l]).mean().item<double>();
      variance += 2 * rho * w[k].item<double>() * w[l].item<double>();
    }
  }
  EXPECT_NEAR(MultiTaskCombiner::rectification_scale(eps, w).item<double>(),
              1.0 / std::sqrt(variance), 1e-5);
  // Identical estimates: the variance is sum(w^2) + 2 w0 w1 rho with rho their mean square.
  const auto same = torch::randn({1, 3, 64, 64}).expand({2, 3, 64, 64});
  const double rho = (same[0] * same[0]).mean().item<double>();
  const auto half = torch::tensor({0.5f, 0.5f});
  EXPECT_NEAR(MultiTaskCombiner::rectification_scale(same, half).item<double>(),
              1.0 / std::sqrt(0.5 + 0.5 * rho), 1e-5);
}

TEST(MtlCombiner, AllOffIsTheMean) {
  MtlOptions options;
  options.balance = false;
  options.rectify = false;
  MultiTaskCombiner combiner(options);
  anagram::TaskPredictions tasks;
  tasks.eps = torch::randn({2, 3, 8, 8});
  tasks.variance = torch::randn({2, 3, 8, 8});
  tasks.view_inputs = torch::randn({2, 3, 8, 8});
  const auto out = combiner.combine(tasks);
  const auto mean = anagram::MeanCombiner().combine(tasks);
  EXPECT_TRUE(torch::allclose(out.eps, mean.eps, 1e-6, 1e-6));
  EXPECT_TRUE(torch::allclose(out.variance, mean.variance, 1e-6, 1e-6));
  EXPECT_FALSE(out.scores.defined());
}

TEST(MtlCombiner, BalancingWithoutAScorerIsAnError) {
  EXPECT_THROW(MultiTaskCombiner(MtlOptions{}), anagram::Error);
}

// The whole combination on an analytic dummy scorer: the weights follow the scores it returns
// (the lagging task gets more), the estimate is c * sum_k alpha_k eps_k with c rectifying it,
// and the scorer sees each task's view input and the step's timestep.
TEST(MtlCombiner, CombinesWithADummyScorer) {
  torch::manual_seed(5);
  anagram::TaskPredictions tasks;
  tasks.eps = torch::randn({2, 3, 8, 8});
  tasks.variance = torch::randn({2, 3, 8, 8});
  tasks.view_inputs = torch::randn({2, 3, 8, 8});
  tasks.step_index = 3;
  tasks.num_steps = 30;
  tasks.timestep = 700;
  int64_t seen_timestep = -1;
  torch::Tensor seen_inputs;
  MultiTaskCombiner combiner(MtlOptions{}, [&](const torch::Tensor& inputs, int64_t t) {
    seen_inputs = inputs;
    seen_timestep = t;
    return torch::tensor({0.25f, 0.75f});
  });
  const auto out = combiner.combine(tasks);
  EXPECT_EQ(seen_timestep, 700);
  EXPECT_TRUE(torch::equal(seen_inputs, tasks.view_inputs));
  const double exponent = -(1.0 + 3.0 / 30.0);
  const double a = std::pow(0.25, exponent), b = std::pow(0.75, exponent);
  const auto w = torch::tensor({a / (a + b), b / (a + b)}, torch::kFloat);
  EXPECT_LT(max_abs_diff(out.weights, w), 1e-6);
  EXPECT_GT(out.weights[0].item<float>(), out.weights[1].item<float>());
  const auto c = MultiTaskCombiner::rectification_scale(tasks.eps, w);
  const auto expected = c * (w[0] * tasks.eps[0] + w[1] * tasks.eps[1]);
  EXPECT_LT(max_abs_diff(out.eps[0], expected), 1e-5);
  EXPECT_LT(max_abs_diff(out.variance[0], w[0] * tasks.variance[0] + w[1] * tasks.variance[1]),
            1e-5);
  EXPECT_TRUE(torch::equal(out.scores, torch::tensor({0.25f, 0.75f})));
}

}  // namespace
