// The stage I sampler: its batching contract on a dummy denoiser, and every step of a real run
// on the bundled model against a diffusers-based Python run (scripts/golden/golden_sampler.py).
#include <gtest/gtest.h>

#include "anagram/core/error.h"
#include "anagram/diffusion/combiner.h"
#include "anagram/diffusion/ddpm_scheduler.h"
#include "anagram/diffusion/noise_source.h"
#include "anagram/diffusion/sampler.h"
#include "anagram/models/bundle.h"
#include "anagram/models/text_encoder.h"
#include "anagram/models/unet.h"
#include "anagram/views/views.h"
#include "golden_io.h"
#include "tiny_bundle.h"

namespace {

using anagram::testing::max_abs_diff;
using anagram::testing::relative_diff;

using anagram::testing::load_golden;

std::vector<anagram::ViewPtr> identity_and_rot180() {
  return {anagram::make_view("identity"), anagram::make_view("rotate_180")};
}

struct GoldenRun : ::testing::Test {
  static void SetUpTestSuite() {
    golden_ = new std::map<std::string, torch::Tensor>(
        load_golden(std::string(ANAGRAM_GOLDEN_DIR) + "/sampler_baseline.pt"));
    manifest_ = new anagram::Manifest(anagram::read_manifest(ANAGRAM_DEFAULT_BUNDLE));
    unet_ = new anagram::UNet(
        anagram::UNet::load(*manifest_, manifest_->stage(1), torch::kCPU, torch::kFloat));
    text_ = new anagram::TextEncoder(
        anagram::TextEncoder::load(*manifest_, torch::kCPU, torch::kFloat));
  }
  static void TearDownTestSuite() {
    delete text_;
    delete unet_;
    delete manifest_;
    delete golden_;
  }
  static const torch::Tensor& golden(const std::string& name) { return golden_->at(name); }
  static anagram::DDPMSchedulerConfig scheduler_config() {
    return std::get<anagram::DDPMSchedulerConfig>(manifest_->stage(1).scheduler);
  }
  // The baseline sampler (mean combiner) for identity + rotate_180 and two prompts.
  struct BaselineRun {
    explicit BaselineRun(const std::vector<std::string>& prompts)
        : views(identity_and_rot180()),
          stack(views, 64, 64, torch::kCPU),
          sampler(*unet_, anagram::StageSpec::base(scheduler_config()), stack,
                  {text_->encode({""}), text_->encode(prompts)}, combiner) {}
    std::vector<anagram::ViewPtr> views;
    anagram::ViewStack stack;
    anagram::MeanCombiner combiner;
    anagram::MultiViewSampler sampler;
  };
  static anagram::SamplerParams golden_params() {
    anagram::SamplerParams params;
    params.steps = static_cast<int>(golden("num_steps").item<int64_t>());
    params.guidance_scale = golden("guidance").item<double>();
    return params;
  }

  static std::map<std::string, torch::Tensor>* golden_;
  static const anagram::Manifest* manifest_;
  static const anagram::UNet* unet_;
  static const anagram::TextEncoder* text_;
};
std::map<std::string, torch::Tensor>* GoldenRun::golden_ = nullptr;
const anagram::Manifest* GoldenRun::manifest_ = nullptr;
const anagram::UNet* GoldenRun::unet_ = nullptr;
const anagram::TextEncoder* GoldenRun::text_ = nullptr;

TEST_F(GoldenRun, PromptEmbeddingsMatchTransformers) {
  EXPECT_LT(max_abs_diff(text_->encode({"dog", "cat"}), golden("prompt_embeds")), 1e-5);
  EXPECT_LT(max_abs_diff(text_->encode({""}), golden("negative_embeds")), 1e-5);
}

TEST_F(GoldenRun, UNetMatchesDiffusersOnOneBatch) {
  const auto text =
      torch::cat({golden("negative_embeds"), golden("negative_embeds"), golden("prompt_embeds")});
  const int64_t t = golden("timesteps")[0].item<int64_t>();
  const auto out = (*unet_)(golden("unet_input_step0"), t, text);
  EXPECT_LT(max_abs_diff(out, golden("unet_output_step0")), 1e-4);
}

TEST_F(GoldenRun, NoiseSourceDrawsThePublishedSequence) {
  anagram::NoiseSource noise(golden("seed").item<int64_t>(), torch::kFloat, torch::kCPU);
  EXPECT_TRUE(torch::equal(noise.next({1, 3, 64, 64}), golden("initial_noise")));
  const auto timesteps = golden("timesteps");
  for (int64_t i = 0; i < timesteps.size(0); ++i) {
    if (timesteps[i].item<int64_t>() == 0) continue;  // the last step draws no noise
    EXPECT_TRUE(torch::equal(noise.next({1, 3, 64, 64}), golden("step_noise")[i])) << "step " << i;
  }
}

// Each step on its own: the C++ step from the golden x_{i-1} must give the golden x_i (and the
// same combined model output) to float tolerance, relative to the tensor's largest magnitude
// (x_t reaches about 4 early on). Differences cannot compound here. 1e-5 would hold with
// LibTorch 1.13; 2.x's CPU convolutions order their sums differently (1.1e-5 seen).
TEST_F(GoldenRun, EveryStepMatchesDiffusers) {
  BaselineRun run({"dog", "cat"});
  anagram::MultiViewSampler& sampler = run.sampler;
  torch::Tensor output;
  sampler.set_observer([&](const anagram::StepRecord& r) {
    output = torch::cat({r.combined.eps, r.combined.variance}, 1);
  });
  const anagram::SamplerParams params = golden_params();
  const auto scheduler = anagram::make_stage_scheduler(scheduler_config());
  scheduler->set_timesteps(params.steps);
  anagram::NoiseSource noise(golden("seed").item<int64_t>(), torch::kFloat, torch::kCPU);
  torch::Tensor x = noise.next({1, 3, 64, 64});
  for (int i = 0; i < params.steps; ++i) {
    EXPECT_EQ(scheduler->timesteps()[i], golden("timesteps")[i].item<int64_t>());
    const torch::Tensor next = sampler.step(*scheduler, x, i, params, noise);
    const auto& expected_output = golden("model_outputs")[i];
    EXPECT_LT(max_abs_diff(output, expected_output) / expected_output.abs().max().item<double>(),
              5e-5)
        << "step " << i;
    const auto& expected_x = golden("x_steps")[i];
    EXPECT_LT(max_abs_diff(next, expected_x) / expected_x.abs().max().item<double>(), 5e-5)
        << "step " << i;
    x = golden("x_steps")[i];  // continue from the reference trajectory
  }
}

// The whole run, free-running: float differences may grow through the loop but stay far below
// one 8-bit level of the output picture (2/255).
TEST_F(GoldenRun, WholeRunMatchesDiffusers) {
  BaselineRun run({"dog", "cat"});
  anagram::MultiViewSampler& sampler = run.sampler;
  anagram::NoiseSource noise(golden("seed").item<int64_t>(), torch::kFloat, torch::kCPU);
  const torch::Tensor x = sampler.sample(golden_params(), noise);
  const auto& expected = golden("x_steps")[golden("x_steps").size(0) - 1];
  EXPECT_LT(max_abs_diff(x, expected), 1e-3);
}

TEST_F(GoldenRun, SameSeedSameResultOtherSeedOtherResult) {
  BaselineRun baseline({"a", "b"});
  anagram::MultiViewSampler& sampler = baseline.sampler;
  anagram::SamplerParams params;
  params.steps = 3;
  auto run = [&](uint64_t seed) {
    anagram::NoiseSource noise(seed, torch::kFloat, torch::kCPU);
    return sampler.sample(params, noise);
  };
  const auto first = run(7);
  EXPECT_TRUE(torch::equal(first, run(7)));
  EXPECT_FALSE(torch::equal(first, run(8)));
}

// A dummy denoiser shows the batching contract: one call per step with [uncond x N, cond x N],
// views undone on its output, CFG on the noise channels, variance from the conditional half.
TEST(Sampler, BatchesViewsAndGuidanceInOneCall) {
  const auto views = identity_and_rot180();
  const anagram::ViewStack stack(views, 8, 8, torch::kCPU);
  const auto negative = torch::full({1, 77, 4}, -1.0);
  const auto prompts = torch::stack({torch::full({77, 4}, 1.0), torch::full({77, 4}, 2.0)});
  int calls = 0;
  torch::Tensor last_input;
  // Output: noise channels = input * (1 + text value), variance channels = text value.
  anagram::Denoiser dummy = [&](const torch::Tensor& x, int64_t, const torch::Tensor& text,
                                const torch::Tensor&) {
    ++calls;
    EXPECT_EQ(x.size(0), 4);
    EXPECT_TRUE(torch::equal(text[0], negative[0]));
    EXPECT_TRUE(torch::equal(text[1], negative[0]));
    EXPECT_TRUE(torch::equal(text[2], prompts[0]));
    EXPECT_TRUE(torch::equal(text[3], prompts[1]));
    last_input = x;
    const auto value = text.select(1, 0).select(1, 0).view({-1, 1, 1, 1});
    return torch::cat({x * (1 + value), value.expand_as(x)}, 1);
  };
  const anagram::MeanCombiner combiner;
  anagram::MultiViewSampler sampler(dummy,
                                    anagram::StageSpec::base(anagram::DDPMSchedulerConfig{}, 3, 8),
                                    stack, {negative, prompts}, combiner);
  std::vector<anagram::CombinedPrediction> combined;
  std::vector<torch::Tensor> inputs;
  sampler.set_observer([&](const anagram::StepRecord& r) {
    combined.push_back(r.combined);
    inputs.push_back(last_input);
  });
  anagram::SamplerParams params;
  params.steps = 4;
  params.guidance_scale = 3.0;
  anagram::NoiseSource noise(0, torch::kFloat, torch::kCPU);
  sampler.sample(params, noise);
  EXPECT_EQ(calls, 4);

  // Step 0 by hand: X_k = v_k(x); uncond eps = 0 * X_k, cond eps = (1 + k + 1) X_k; undone.
  anagram::NoiseSource replay(0, torch::kFloat, torch::kCPU);
  const auto x = replay.next({1, 3, 8, 8});
  EXPECT_TRUE(torch::equal(inputs[0].narrow(0, 0, 2), stack.apply_each(x)));
  EXPECT_TRUE(torch::equal(inputs[0].narrow(0, 2, 2), stack.apply_each(x)));
  // eps_k = 0 + g * ((2 + k) x - 0), mean over k = g * 2.5 x; variance = mean(1, 2) = 1.5.
  EXPECT_TRUE(torch::allclose(combined[0].eps, 3.0 * 2.5 * x));
  EXPECT_TRUE(torch::allclose(combined[0].variance, torch::full_like(x, 1.5)));
  EXPECT_TRUE(torch::allclose(combined[0].weights, torch::full({2}, 0.5)));
}

TEST(Sampler, RejectsBadParams) {
  anagram::SamplerParams params;
  params.steps = 0;
  EXPECT_THROW(params.validate(), anagram::Error);
  params.steps = 5;
  params.guidance_scale = -1;
  EXPECT_THROW(params.validate(), anagram::Error);
}

}  // namespace
