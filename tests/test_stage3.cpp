// Stage III (the x4 upscaler on latents) against diffusers (scripts/golden/golden_stage3.py on
// models/tiny-if's tiny stage III): the tokenizer and text encoder, the published pipeline with
// one view and one prompt (noise order, noised condition, every DDIM step, the decoder), the
// multi-view loop as a small Python reference computes it (baseline mean and rectification in
// noise space), diffusers' tiled decoding; and the plan's rules for a latent stage.
#include <gtest/gtest.h>

#include <fstream>
#include <functional>

#include "anagram/core/error.h"
#include "anagram/diffusion/combiner.h"
#include "anagram/diffusion/mtl_combiner.h"
#include "anagram/diffusion/noise_source.h"
#include "anagram/diffusion/sampler.h"
#include "anagram/diffusion/stage_scheduler.h"
#include "anagram/models/open_clip_text_encoder.h"
#include "anagram/models/unet.h"
#include "anagram/models/vae_decoder.h"
#include "anagram/pipeline/plan.h"
#include "golden_io.h"

namespace {

using anagram::testing::golden_tensor;
using anagram::testing::relative_diff;

struct Stage3Golden : ::testing::Test {
  static void SetUpTestSuite() {
    golden_ = new std::map<std::string, torch::Tensor>(
        anagram::testing::load_golden(std::string(ANAGRAM_GOLDEN_DIR) + "/stage3_pipeline.pt"));
    manifest_ = new anagram::Manifest(anagram::read_manifest(ANAGRAM_DEFAULT_BUNDLE));
    unet_ = new anagram::UNet(
        anagram::UNet::load(*manifest_, manifest_->stage(3), torch::kCPU, torch::kFloat));
    vae_ = new anagram::VaeDecoder(
        anagram::VaeDecoder::load(*manifest_, *manifest_->stage(3).latent, torch::kCPU));
  }
  static void TearDownTestSuite() {
    delete vae_;
    delete unet_;
    delete manifest_;
    delete golden_;
  }
  static const torch::Tensor& golden(const std::string& name) {
    return golden_tensor(*golden_, name);
  }
  static const anagram::StageEntry& entry() { return manifest_->stage(3); }

  // The stage's start on the golden 32x32 picture, drawn from the golden seed.
  static anagram::SuperResolutionStart start(anagram::NoiseSource& noise) {
    anagram::SuperResolutionStart s = anagram::start_super_resolution(
        entry().scheduler, *entry().noising_scheduler,
        static_cast<int>(golden("noise_level").item<int64_t>()), 32, golden("lowres"), noise,
        entry().latent->channels, anagram::NoiseOrder::kAugmentationFirst);
    s.spec.scored_channels = 0;  // latents: the plan's StagePlan::scored is false
    return s;
  }

  struct Result {
    torch::Tensor latents;
    std::vector<anagram::StepRecord> steps;
  };
  // The multi-view loop of the library on the golden start, prompts and settings.
  static Result sample(const std::vector<std::string>& views,
                       const std::vector<std::string>& prompts,
                       const anagram::NoiseCombiner& combiner) {
    std::vector<anagram::ViewPtr> view_ptrs;
    std::vector<torch::Tensor> states;
    for (size_t k = 0; k < views.size(); ++k) {
      view_ptrs.push_back(anagram::make_view(views[k]));
      states.push_back(golden("emb_" + prompts[k]));
    }
    const anagram::ViewStack stack(view_ptrs, 32, 32, torch::kCPU);
    anagram::NoiseSource noise(golden("seed").item<int64_t>(), torch::kFloat, torch::kCPU);
    anagram::SuperResolutionStart s = start(noise);
    const anagram::Conditioning conditioning{golden("emb_empty"), torch::cat(states, 0)};
    anagram::MultiViewSampler sampler(*unet_, s.spec, stack, conditioning, combiner);
    Result result;
    sampler.set_observer([&](const anagram::StepRecord& r) { result.steps.push_back(r); });
    anagram::SamplerParams params;
    params.steps = static_cast<int>(golden("steps").item<int64_t>());
    params.guidance_scale = golden("guidance").item<double>();
    result.latents = sampler.run(s.x, params, noise);
    return result;
  }

  static std::map<std::string, torch::Tensor>* golden_;
  static anagram::Manifest* manifest_;
  static anagram::UNet* unet_;
  static anagram::VaeDecoder* vae_;
};
std::map<std::string, torch::Tensor>* Stage3Golden::golden_ = nullptr;
anagram::Manifest* Stage3Golden::manifest_ = nullptr;
anagram::UNet* Stage3Golden::unet_ = nullptr;
anagram::VaeDecoder* Stage3Golden::vae_ = nullptr;

TEST_F(Stage3Golden, TokensAndTextStatesMatchTransformers) {
  const auto encoder =
      anagram::OpenClipTextEncoder::load(*manifest_, *entry().text, torch::kCPU, torch::kFloat);
  for (const std::string prompt : {"dog", "cat", ""}) {
    SCOPED_TRACE(prompt);
    const std::string key = prompt.empty() ? "empty" : prompt;
    const auto tokens = encoder.tokenizer().encode(prompt).tokens;
    EXPECT_EQ(tokens, anagram::testing::to_int64_vector(golden("ids_" + key)));
    EXPECT_EQ(tokens.back(), 0) << "OpenCLIP pads with 0";
    EXPECT_LT(relative_diff(encoder.encode({prompt}), golden("emb_" + key)), 1e-5);
  }
}

TEST_F(Stage3Golden, OneViewIsThePublishedPipeline) {
  anagram::NoiseSource noise(golden("seed").item<int64_t>(), torch::kFloat, torch::kCPU);
  const anagram::SuperResolutionStart s = start(noise);
  // The upscaler draws the augmentation noise first, then the latents.
  const torch::Tensor noised_with_golden_draw =
      anagram::DDPMScheduler(*entry().noising_scheduler)
          .add_noise(golden("lowres"), golden("pipe_noise_aug"), 20);
  EXPECT_TRUE(torch::equal(s.x, golden("pipe_noise_latents")));
  EXPECT_TRUE(torch::equal(s.spec.extra_input, noised_with_golden_draw));
  EXPECT_LT(relative_diff(s.spec.extra_input, golden("pipe_lowres_noised")), 1e-6);
  EXPECT_EQ(s.spec.class_label.item<int64_t>(), 20);

  const auto scheduler = anagram::make_stage_scheduler(entry().scheduler);
  scheduler->set_timesteps(static_cast<int>(golden("steps").item<int64_t>()));
  EXPECT_EQ(scheduler->timesteps(), anagram::testing::to_int64_vector(golden("pipe_timesteps")));

  const anagram::MeanCombiner mean;
  const Result r = sample({"identity"}, {"dog"}, mean);
  EXPECT_LT(relative_diff(r.latents, golden("pipe_latents")), 1e-4);
  const torch::Tensor picture = vae_->decode(r.latents, anagram::VaeTiling::kOff);
  EXPECT_EQ(picture.sizes(), torch::IntArrayRef({1, 3, 128, 128}));
  EXPECT_LT(relative_diff(picture, golden("pipe_picture")), 1e-4);
}

TEST_F(Stage3Golden, TwoViewsBaselineMatchesTheReference) {
  const anagram::MeanCombiner mean;
  const Result r = sample({"identity", "rotate_180"}, {"dog", "cat"}, mean);
  EXPECT_LT(relative_diff(r.steps.front().combined.eps, golden("mv_baseline_first_eps")), 1e-5);
  EXPECT_FALSE(r.steps.front().combined.variance.defined()) << "v-prediction has no variance";
  EXPECT_LT(relative_diff(r.latents, golden("mv_baseline_latents")), 1e-4);
}

TEST_F(Stage3Golden, RectificationActsOnNoiseEstimatesAndBalancingFallsBack) {
  anagram::MtlOptions options;
  options.balance = true;  // the latents cannot be scored: equal weights, scorer never called
  bool scored = false;
  const anagram::MultiTaskCombiner combiner(options, [&](const torch::Tensor& x, int64_t) {
    scored = true;
    return torch::ones({x.size(0)});
  });
  const Result r = sample({"identity", "rotate_180"}, {"dog", "cat"}, combiner);
  EXPECT_FALSE(scored);
  const torch::Tensor scales = golden("mv_rectified_scales");
  ASSERT_EQ(static_cast<int64_t>(r.steps.size()), scales.numel());
  for (size_t i = 0; i < r.steps.size(); ++i) {
    EXPECT_NEAR(r.steps[i].combined.scale.item<double>(), scales[i].item<double>(), 1e-4);
    EXPECT_TRUE(torch::allclose(r.steps[i].combined.weights, torch::full({2}, 0.5)));
  }
  EXPECT_GT(scales[scales.numel() - 1].item<double>(), 1.2) << "the golden must exercise c";
  EXPECT_LT(relative_diff(r.steps.front().combined.eps, golden("mv_rectified_first_eps")), 1e-5);
  EXPECT_LT(relative_diff(r.latents, golden("mv_rectified_latents")), 1e-4);
}

TEST_F(Stage3Golden, TiledDecodingIsDiffusers) {
  EXPECT_EQ(entry().latent->tile, golden("vae_tile_latent").item<int64_t>());
  const torch::Tensor z = golden("tiled_latents_40");
  const torch::Tensor tiled = vae_->decode(z, anagram::VaeTiling::kOn);
  EXPECT_LT(relative_diff(tiled, golden("tiled_picture_40")), 1e-5);
  // auto decodes a 40-cell grid whole (its attention is small); whole differs from tiled.
  const torch::Tensor whole = vae_->decode(z, anagram::VaeTiling::kAuto);
  EXPECT_TRUE(torch::equal(whole, vae_->decode(z, anagram::VaeTiling::kOff)));
  EXPECT_GT(relative_diff(whole, tiled), 1e-3);
  EXPECT_FALSE(vae_->tiles(16, anagram::VaeTiling::kOn));  // one tile
  EXPECT_TRUE(vae_->tiles(256, anagram::VaeTiling::kAuto));
  EXPECT_FALSE(vae_->tiles(256, anagram::VaeTiling::kOff));
}

TEST(StageScheduler, PredictionConversionsAreInverses) {
  const torch::Tensor x = torch::randn({1, 4, 8, 8});
  const torch::Tensor eps = torch::randn({2, 4, 8, 8});
  for (auto type : {anagram::PredictionType::kEpsilon, anagram::PredictionType::kVPrediction,
                    anagram::PredictionType::kSample}) {
    for (float abar : {0.9999f, 0.5f, 7.334e-4f}) {
      const torch::Tensor p = anagram::prediction_from_epsilon(eps, type, abar, x);
      const torch::Tensor back = anagram::epsilon_from_prediction(p, type, abar, x);
      EXPECT_TRUE(torch::allclose(back, eps, 1e-3, 1e-4)) << anagram::to_string(type) << abar;
    }
  }
  // v = sqrt(abar) eps - sqrt(1 - abar) x0 with x = sqrt(abar) x0 + sqrt(1 - abar) eps.
  const float abar = 0.3f;
  const torch::Tensor x0 = torch::randn({1, 4, 8, 8});
  const torch::Tensor xt = std::sqrt(abar) * x0 + std::sqrt(1 - abar) * eps[0];
  const torch::Tensor v = std::sqrt(abar) * eps[0] - std::sqrt(1 - abar) * x0;
  EXPECT_TRUE(torch::allclose(
      anagram::epsilon_from_prediction(v, anagram::PredictionType::kVPrediction, abar, xt), eps[0],
      1e-4, 1e-5));
}

TEST(DDIMSchedulerConfig, ReadsTheUpscalersConfigAndRefusesWhatItCannotRun) {
  const nlohmann::json published = anagram::DDIMSchedulerConfig{}.to_json();
  const auto back = anagram::DDIMSchedulerConfig::from_json(published);
  EXPECT_EQ(back.to_json(), published);
  for (const char* key : {"thresholding", "clip_sample", "rescale_betas_zero_snr"}) {
    nlohmann::json bad = published;
    bad[key] = true;
    EXPECT_THROW(anagram::DDIMSchedulerConfig::from_json(bad), anagram::Error) << key;
  }
  nlohmann::json trailing = published;
  trailing["timestep_spacing"] = "trailing";
  EXPECT_THROW(anagram::DDIMSchedulerConfig::from_json(trailing), anagram::Error);
}

// Which views run in a latent stage is decided from their index maps alone.
TEST(MovesWholeBlocks, PermutationsOfBlocksYesPixelLevelAndSignedViewsNo) {
  for (const char* name : {"identity", "flip", "mirror", "rotate_cw", "rotate_ccw", "rotate_180",
                           "patch_permute", "pixel_permute"}) {
    EXPECT_TRUE(anagram::moves_whole_blocks(*anagram::make_view(name), 64, 4)) << name;
  }
  for (const char* name :
       {"negate", "skew", "square_hinge", "jigsaw", "inner_circle", "low_pass", "grayscale"}) {
    EXPECT_FALSE(anagram::moves_whole_blocks(*anagram::make_view(name), 64, 4)) << name;
  }
  // Not defined on the smaller grid: pixel_permute's 64x64 pieces need 64 cells.
  EXPECT_FALSE(anagram::moves_whole_blocks(*anagram::make_view("pixel_permute"), 32, 4));
}

struct Stage3Plan : ::testing::Test {
  static anagram::GenerateRequest request(const std::string& view, int stages) {
    anagram::GenerateRequest r;
    r.prompts = {"dog", "cat"};
    r.views = {view};
    r.stages = stages;
    r.antiseg = false;
    return r;
  }
  const anagram::Manifest manifest = anagram::read_manifest(ANAGRAM_DEFAULT_BUNDLE);
};

TEST_F(Stage3Plan, ALatentStageIsOneMorePlanEntry) {
  const anagram::GenerationPlan plan = anagram::plan_generation(request("rot180", 3), manifest);
  ASSERT_EQ(plan.num_stages(), 3);
  const anagram::StagePlan& s = plan.stages[2];
  EXPECT_EQ(s.size, 256);
  EXPECT_EQ(s.channels, 4);
  EXPECT_EQ(s.picture_size(), 1024);
  EXPECT_EQ(s.steps, 75);
  EXPECT_EQ(s.guidance, 9.0);
  ASSERT_TRUE(s.super_resolution);
  EXPECT_EQ(s.super_resolution->noise_level, 20);
  EXPECT_TRUE(s.super_resolution->augmentation_noise_first);
  EXPECT_EQ(s.text_model, 3);
  EXPECT_FALSE(s.scored);
  EXPECT_TRUE(std::holds_alternative<anagram::DDIMSchedulerConfig>(s.scheduler));
  EXPECT_EQ(plan.request.stage3_steps, 75);  // resolved into the request metadata records
  EXPECT_EQ(anagram::plan_generation(request("rot180", 0), manifest).num_stages(), 3);
}

TEST_F(Stage3Plan, ViewsThatDoNotMoveWholeCellsAreRefusedOrStopTheDefaultCascade) {
  try {
    anagram::plan_generation(request("skew", 3), manifest);
    FAIL() << "skew in stage III must be refused";
  } catch (const anagram::Error& e) {
    EXPECT_EQ(e.kind(), anagram::ErrorKind::kInvalidArgument);
    EXPECT_EQ(e.field(), "views[0]");
    EXPECT_NE(std::string(e.what()).find("'skew' cannot run in stage 3"), std::string::npos)
        << e.what();
  }
  const anagram::GenerationPlan plan = anagram::plan_generation(request("skew", 0), manifest);
  EXPECT_EQ(plan.num_stages(), 2);
  EXPECT_EQ(plan.request.stages, 2);
  ASSERT_FALSE(plan.notes.empty());
  EXPECT_NE(plan.notes.front().find("stopping after stage 2"), std::string::npos);
}

TEST_F(Stage3Plan, NoiseLevelAboveTheUpscalersMaximumIsRefused) {
  anagram::GenerateRequest r = request("rot180", 3);
  r.stage3_noise_level = 351;
  EXPECT_THROW(anagram::plan_generation(r, manifest), anagram::Error);
  r.stage3_noise_level = 350;
  EXPECT_NO_THROW(anagram::plan_generation(r, manifest));
  r.vae_tiling = "sometimes";
  EXPECT_THROW(anagram::plan_generation(r, manifest), anagram::Error);
}

}  // namespace

namespace {

// The tiny bundle's manifest with one change to its "stage3" object, parsed against its folder.
std::string stage3_error(const std::function<void(nlohmann::json&)>& change) {
  std::ifstream in(std::string(ANAGRAM_DEFAULT_BUNDLE) + "/manifest.json");
  nlohmann::json m = nlohmann::json::parse(in);
  change(m);
  try {
    anagram::parse_manifest(m.dump(), ANAGRAM_DEFAULT_BUNDLE);
  } catch (const anagram::Error& e) {
    EXPECT_EQ(e.kind(), anagram::ErrorKind::kBundle);
    return e.what();
  }
  return "";
}

TEST(Stage3Manifest, EveryKeyIsCheckedAndNamed) {
  EXPECT_EQ(stage3_error([](nlohmann::json&) {}), "");
  EXPECT_NE(
      stage3_error([](nlohmann::json& m) { m["stage3"].erase("latent"); }).find("stage3.latent"),
      std::string::npos);
  EXPECT_NE(stage3_error([](nlohmann::json& m) {
              m["stage3"]["unet"]["in_channels"] = 6;
            }).find("stage3.unet.in_channels"),
            std::string::npos);
  EXPECT_NE(stage3_error([](nlohmann::json& m) {
              m["stage3"]["vae_decoder"]["upscale"] = 2;
            }).find("stage3.vae_decoder.upscale"),
            std::string::npos);
  EXPECT_NE(stage3_error([](nlohmann::json& m) {
              m["stage3"]["scheduler"]["thresholding"] = true;
            }).find("stage3.scheduler"),
            std::string::npos);
  EXPECT_NE(stage3_error([](nlohmann::json& m) {
              m["stage3"]["vae_decoder"]["file"] = "../x.pt";
            }).find("stage3.vae_decoder.file"),
            std::string::npos);
  EXPECT_NE(stage3_error([](nlohmann::json& m) { m["stages"].erase(1); }).find("stage3"),
            std::string::npos);
  EXPECT_NE(stage3_error([](nlohmann::json& m) {
              m["files"].erase("stage3/unet.pt");
            }).find("stage3/unet.pt"),
            std::string::npos);
}

}  // namespace
