// The method's sampling step (docs/algorithm.md steps 1-9) against a diffusers-based Python run of
// the same algorithm on the same models and seed (scripts/golden/golden_mtl.py): CLIP scores,
// balancing weights, rectification scale, the DDPM step, the concept maps, the overlap loss and
// the anti-segregation update, step by step.
#include <gtest/gtest.h>

#include "anagram/diffusion/antiseg.h"
#include "anagram/diffusion/ddpm_scheduler.h"
#include "anagram/diffusion/mtl_combiner.h"
#include "anagram/diffusion/noise_source.h"
#include "anagram/diffusion/sampler.h"
#include "anagram/models/bundle.h"
#include "anagram/models/noise_aware_clip.h"
#include "anagram/models/text_encoder.h"
#include "anagram/models/unet.h"
#include "anagram/pipeline/model_callbacks.h"
#include "golden_io.h"
#include "tiny_bundle.h"

namespace {

using anagram::testing::max_abs_diff;
using anagram::testing::relative_diff;

struct MtlGolden : ::testing::Test {
  static void SetUpTestSuite() {
    golden_ = new std::map<std::string, torch::Tensor>(
        anagram::testing::load_golden(std::string(ANAGRAM_GOLDEN_DIR) + "/sampler_mtl.pt"));
    const auto& tiny = anagram::testing::TinyBundle::get();
    manifest_ = &tiny.manifest;
    unet_ = &tiny.unet;
    text_ = &tiny.text;
    clip_ = &tiny.clip;
  }
  static void TearDownTestSuite() { delete golden_; }
  static const torch::Tensor& golden(const std::string& name) { return golden_->at(name); }

  // Everything one run needs, for a given schedule and method options.
  struct Run {
    Run(const anagram::MtlOptions& mtl, int antiseg_steps, int num_steps)
        : prompts{"a photo of a dog", "a photo of a cat"},
          views{anagram::make_view("identity"), anagram::make_view("rotate_180")},
          image_views(views, 64, 64, torch::kCPU),
          map_views(views, 32, 32, torch::kCPU),
          prompt_states(text_->encode(prompts)),
          combiner(mtl, anagram::clip_task_scorer(*clip_, prompts, !mtl.exact_clip_input)),
          antiseg(
              anagram::attention_probe(*unet_), image_views, map_views, prompt_states,
              anagram::concept_mask({anagram::find_concept_tokens(text_->tokenizer(), prompts[0]),
                                     anagram::find_concept_tokens(text_->tokenizer(), prompts[1])},
                                    77),
              anagram::AntiSegOptions{antiseg_steps, 5.0, {}}, num_steps),
          sampler(*unet_, anagram::StageSpec::base(manifest_->stage(1).scheduler), image_views,
                  {text_->encode({""}), prompt_states}, combiner) {
      params.steps = num_steps;
      params.guidance_scale = 10.0;
      sampler.set_post_step_hook([this](const torch::Tensor& x, int i, int64_t t) {
        before_hook = x;
        return antiseg(x, i, t);
      });
      sampler.set_observer([this](const anagram::StepRecord& r) { last = r.combined; });
    }
    std::vector<std::string> prompts;
    std::vector<anagram::ViewPtr> views;
    anagram::ViewStack image_views, map_views;
    torch::Tensor prompt_states;
    anagram::MultiTaskCombiner combiner;
    anagram::AntiSegregation antiseg;
    anagram::MultiViewSampler sampler;
    anagram::SamplerParams params;
    torch::Tensor before_hook;
    anagram::CombinedPrediction last;
  };

  static std::map<std::string, torch::Tensor>* golden_;
  static const anagram::Manifest* manifest_;
  static const anagram::UNet* unet_;
  static const anagram::TextEncoder* text_;
  static const anagram::NoiseAwareClip* clip_;
};
std::map<std::string, torch::Tensor>* MtlGolden::golden_ = nullptr;
const anagram::Manifest* MtlGolden::manifest_ = nullptr;
const anagram::UNet* MtlGolden::unet_ = nullptr;
const anagram::TextEncoder* MtlGolden::text_ = nullptr;
const anagram::NoiseAwareClip* MtlGolden::clip_ = nullptr;

TEST_F(MtlGolden, ConceptTokensAndEmbeddings) {
  const auto& tokenizer = text_->tokenizer();
  for (int k = 0; k < 2; ++k) {
    const auto positions =
        anagram::find_concept_tokens(tokenizer, k == 0 ? "a photo of a dog" : "a photo of a cat");
    EXPECT_EQ(positions.front(), golden("concept_ranges")[k][0].item<int64_t>());
    EXPECT_EQ(positions.back() + 1, golden("concept_ranges")[k][1].item<int64_t>());
  }
  EXPECT_LT(relative_diff(clip_->embed_texts({"a photo of a dog", "a photo of a cat"}),
                          golden("clip_text_emb")),
            1e-5);
}

// The captured cross-attention of each 32x32 layer, concept columns summed (before the views
// are undone), against the Python run's explicit softmax(QK^T) attention on the same model.
TEST_F(MtlGolden, CapturedAttentionMatchesExplicitAttention) {
  const std::vector<anagram::ViewPtr> views = {anagram::make_view("identity"),
                                               anagram::make_view("rotate_180")};
  const anagram::ViewStack stack(views, 64, 64, torch::kCPU);
  torch::NoGradGuard no_grad;
  const auto out = unet_->forward_with_attention(
      stack.apply_each(golden("x_after_step")[0]), golden("antiseg_timesteps")[0].item<int64_t>(),
      text_->encode({"a photo of a dog", "a photo of a cat"}));
  const auto& expected = golden("antiseg_layer_maps_step0");  // (L, N, 32, 32)
  ASSERT_EQ(out.attention.size(0), expected.size(0));
  const auto concept = (out.attention * golden("concept_mask").view({1, 2, 1, 77})).sum(-1);
  EXPECT_LT(relative_diff(concept.view(expected.sizes()), expected), 5e-5);
  // Probabilities summed over heads (4 in the tiny model): text columns add up to at most 4.
  EXPECT_TRUE((out.attention.sum(-1) <= 4.0 + 1e-4).all().item<bool>());
}

// Each step from the reference x: every intermediate must match to float tolerance (relative
// to the tensor's magnitude; 5e-5 allows for other LibTorch versions' kernel orders).
TEST_F(MtlGolden, EveryStepMatchesThePythonRun) {
  const int steps = static_cast<int>(golden("num_steps").item<int64_t>());
  const int k = static_cast<int>(golden("antiseg_steps").item<int64_t>());
  Run run(anagram::MtlOptions{}, k, steps);
  const auto scheduler = anagram::make_stage_scheduler(manifest_->stage(1).scheduler);
  scheduler->set_timesteps(steps);
  anagram::NoiseSource noise(golden("seed").item<int64_t>(), torch::kFloat, torch::kCPU);
  EXPECT_TRUE(torch::equal(noise.next({1, 3, 64, 64}), golden("initial_noise")));
  torch::NoGradGuard no_grad;
  for (int i = 0; i < steps; ++i) {
    SCOPED_TRACE("step " + std::to_string(i));
    const torch::Tensor next =
        run.sampler.step(*scheduler, golden("x_before")[i], i, run.params, noise);
    EXPECT_LT(relative_diff(run.last.scores, golden("scores")[i]), 1e-5);
    EXPECT_LT(relative_diff(run.last.weights, golden("weights")[i]), 1e-5);
    EXPECT_LT(relative_diff(run.last.scale, golden("rect_scale")[i]), 1e-5);
    EXPECT_LT(
        relative_diff(torch::cat({run.last.eps, run.last.variance}, 1), golden("model_outputs")[i]),
        5e-5);
    const torch::Tensor after_step = i + 1 < steps ? run.before_hook : next;
    EXPECT_LT(relative_diff(after_step, golden("x_after_step")[i]), 5e-5);
    if (i < k) {
      ASSERT_EQ(static_cast<int>(run.antiseg.records().size()), i + 1);
      const auto& record = run.antiseg.records().back();
      EXPECT_LT(relative_diff(record.maps, golden("antiseg_maps")[i]), 5e-5);
      EXPECT_NEAR(record.loss.item<double>(), golden("antiseg_loss")[i].item<double>(), 1e-5);
      const torch::Tensor grad = (run.before_hook - next) / 5.0;
      EXPECT_LT(relative_diff(grad, golden("antiseg_grad")[i]), 1e-3);
      EXPECT_LT(relative_diff(next, golden("antiseg_x")[i]), 5e-5);
    }
  }
}

// The clean variants: exponent -(1 + i/steps) and CLIP input X, as a 2-step free run.
TEST_F(MtlGolden, CleanVariantsMatchThePythonRun) {
  anagram::MtlOptions clean;
  clean.exact_steps_exponent = true;
  clean.exact_clip_input = true;
  const int steps = static_cast<int>(golden("clean_num_steps").item<int64_t>());
  Run run(clean, static_cast<int>(golden("clean_antiseg_steps").item<int64_t>()), steps);
  std::vector<anagram::CombinedPrediction> combined;
  run.sampler.set_observer([&](const anagram::StepRecord& r) { combined.push_back(r.combined); });
  anagram::NoiseSource noise(golden("seed").item<int64_t>(), torch::kFloat, torch::kCPU);
  const torch::Tensor result = run.sampler.sample(run.params, noise);
  ASSERT_EQ(static_cast<int>(combined.size()), steps);
  for (int i = 0; i < steps; ++i) {
    EXPECT_LT(relative_diff(combined[i].weights, golden("clean_weights")[i]), 1e-5);
    EXPECT_LT(relative_diff(combined[i].scale, golden("clean_rect_scale")[i]), 1e-4);
  }
  EXPECT_LT(relative_diff(result, golden("clean_result")), 1e-4);

  // The exact exponent on the published run's scores.
  const int published_steps = static_cast<int>(golden("num_steps").item<int64_t>());
  for (int i = 0; i < published_steps; ++i) {
    EXPECT_LT(relative_diff(run.combiner.balancing_weights(golden("scores")[i], i, published_steps),
                            golden("clean_exponent_weights")[i]),
              1e-5);
  }
}

}  // namespace
