// DDPM scheduler against diffusers 0.24.0 (golden values from scripts/golden/golden_ddpm.py).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "anagram/core/error.h"
#include "anagram/diffusion/ddpm_scheduler.h"
#include "golden_io.h"

namespace anagram {
namespace {

using anagram::testing::max_abs_diff;
using anagram::testing::relative_diff;

using Golden = std::map<std::string, torch::Tensor>;

const Golden& golden() {
  static const Golden tensors =
      anagram::testing::load_golden(std::string(ANAGRAM_GOLDEN_DIR) + "/ddpm_if.pt");
  return tensors;
}

const torch::Tensor& at(const std::string& name) {
  return anagram::testing::golden_tensor(golden(), name);
}

// The config the golden script used, parsed by our own from_json.
DDPMSchedulerConfig golden_config(const std::string& name) {
  const torch::Tensor bytes = at(name + "_config_json").contiguous();
  const std::string text(reinterpret_cast<const char*>(bytes.data_ptr<uint8_t>()), bytes.numel());
  return DDPMSchedulerConfig::from_json(nlohmann::json::parse(text));
}

constexpr double kTolerance = 1e-5;

TEST(DDPMScheduler, AlphasCumprodMatchDiffusers) {
  for (const std::string name : {"if1", "if2", "linclip", "vpred", "x0pred", "learned"}) {
    SCOPED_TRACE(name);
    DDPMScheduler scheduler(golden_config(name));
    const torch::Tensor expected = at(name + "_alphas_cumprod");
    const auto& ours = scheduler.alphas_cumprod();
    ASSERT_EQ(static_cast<int64_t>(ours.size()), expected.numel());
    const torch::Tensor actual = torch::tensor(ours, torch::kFloat32);
    // Same float32 operations in the same order: bit-identical with LibTorch 1.13; other
    // LibTorch versions accumulate the cumulative product differently, within 1 ulp or so.
    EXPECT_LT(max_abs_diff(actual, expected), 2e-7);
  }
}

TEST(DDPMScheduler, TimestepsMatchDiffusers) {
  const std::vector<int> counts = {1, 2, 3, 7, 16, 30, 50, 61, 100, 103, 250, 333, 999, 1000};
  const std::vector<std::pair<std::string, nlohmann::json>> spacings = {
      {"leading", {{"timestep_spacing", "leading"}}},
      {"leadingoff1", {{"timestep_spacing", "leading"}, {"steps_offset", 1}}},
      {"trailing", {{"timestep_spacing", "trailing"}}},
      {"linspace", {{"timestep_spacing", "linspace"}}},
  };
  for (const auto& [label, json] : spacings) {
    DDPMScheduler scheduler(DDPMSchedulerConfig::from_json(json));
    for (int n : counts) {
      if (label == "leadingoff1" && n == 1000) continue;
      SCOPED_TRACE(label + " n=" + std::to_string(n));
      scheduler.set_timesteps(n);
      const std::vector<int64_t> expected =
          anagram::testing::to_int64_vector(at("ts_" + label + "_" + std::to_string(n)));
      const std::vector<int64_t> expected_prev =
          anagram::testing::to_int64_vector(at("prevt_" + label + "_" + std::to_string(n)));
      const std::vector<int64_t>& ours = scheduler.timesteps();
      ASSERT_EQ(ours.size(), static_cast<size_t>(n));
      // diffusers' 'trailing' sometimes makes n + 1 timesteps, the extra one -1 (numpy arange
      // rounding); we keep the first n.
      ASSERT_GE(expected.size(), ours.size());
      for (size_t i = ours.size(); i < expected.size(); ++i) EXPECT_LT(expected[i], 0);
      for (size_t i = 0; i < ours.size(); ++i) {
        EXPECT_EQ(ours[i], expected[i]) << "index " << i;
        EXPECT_EQ(scheduler.previous_timestep(ours[i]), expected_prev[i]) << "index " << i;
      }
    }
  }
}

TEST(DDPMScheduler, IfStageOneThirtyStepsLeading) {
  DDPMScheduler scheduler{DDPMSchedulerConfig{}};
  scheduler.set_timesteps(30);
  const auto& ts = scheduler.timesteps();
  ASSERT_EQ(ts.size(), 30u);
  EXPECT_EQ(ts.front(), 957);
  EXPECT_EQ(ts.back(), 0);
  EXPECT_EQ(scheduler.previous_timestep(957), 924);
  EXPECT_TRUE(scheduler.needs_noise(33));
  EXPECT_FALSE(scheduler.needs_noise(0));
}

// Replays diffusers' loop: the recorded model outputs and noise go into our step(), chained on
// our own samples; each step must match diffusers' prev_sample and pred_original_sample.
void check_loop(const std::string& name, int steps, const torch::Device& device) {
  SCOPED_TRACE(name + " n=" + std::to_string(steps) + " on " + device.str());
  DDPMScheduler scheduler(golden_config(name));
  scheduler.set_timesteps(steps);
  const std::string prefix = name + "_n" + std::to_string(steps) + "_";
  const std::vector<int64_t> ts = anagram::testing::to_int64_vector(at(prefix + "ts"));
  ASSERT_EQ(scheduler.timesteps(), ts);
  const auto to_dev = [&](const torch::Tensor& t) { return t.to(device); };
  const torch::Tensor mo = at(prefix + "mo");
  const torch::Tensor noise = at(prefix + "noise");
  const int64_t channels = at(prefix + "x").size(2);
  const bool learned = scheduler.config().variance_type == VarianceType::kLearned ||
                       scheduler.config().variance_type == VarianceType::kLearnedRange;
  torch::Tensor x = to_dev(at(prefix + "x")[0]);
  for (size_t i = 0; i < ts.size(); ++i) {
    SCOPED_TRACE("step " + std::to_string(i) + " t=" + std::to_string(ts[i]));
    // Non-learned configs get the full 2C output on even steps (second half ignored).
    torch::Tensor model_output = to_dev(mo[i]);
    if (!learned && i % 2 == 1) model_output = model_output.narrow(1, 0, channels);
    torch::Tensor step_noise;
    if (scheduler.needs_noise(ts[i])) step_noise = to_dev(noise[i]);
    const auto out = scheduler.step(model_output, ts[i], x, step_noise);
    ASSERT_EQ(out.prev_sample.device().type(), device.type());
    EXPECT_LT(max_abs_diff(out.pred_original_sample.cpu(), at(prefix + "x0")[i]), kTolerance);
    EXPECT_LT(max_abs_diff(out.prev_sample.cpu(), at(prefix + "prev")[i]), kTolerance);
    // The same step from diffusers' own input (no accumulated difference).
    const auto exact = scheduler.step(model_output, ts[i], to_dev(at(prefix + "x")[i]), step_noise);
    EXPECT_LT(max_abs_diff(exact.prev_sample.cpu(), at(prefix + "prev")[i]), kTolerance);
    x = out.prev_sample;
  }
}

TEST(DDPMScheduler, StepLoopsMatchDiffusers) {
  check_loop("if1", 30, torch::kCPU);
  check_loop("if1", 7, torch::kCPU);
  for (const std::string name : {"if2", "linclip", "vpred", "x0pred", "learned"}) {
    check_loop(name, 7, torch::kCPU);
  }
}

TEST(DDPMScheduler, StepLoopsMatchDiffusersOnCuda) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  check_loop("if1", 30, torch::kCUDA);
  check_loop("if2", 7, torch::kCUDA);
  check_loop("linclip", 7, torch::kCUDA);
}

// Reduced precision keeps its dtype (thresholding runs in float32 inside). CPU has no Half exp in
// LibTorch 1.13, so the CPU run uses bfloat16.
TEST(DDPMScheduler, ReducedPrecisionKeepsDtype) {
  const bool cuda = torch::cuda::is_available();
  const torch::Device device = cuda ? torch::kCUDA : torch::kCPU;
  const torch::ScalarType dtype = cuda ? torch::kHalf : torch::kBFloat16;
  DDPMScheduler scheduler{DDPMSchedulerConfig{}};
  scheduler.set_timesteps(7);
  const std::string prefix = "if1_n7_";
  for (int i : {1, 6}) {
    const int64_t t = scheduler.timesteps()[i];
    const auto noise = at(prefix + "noise")[i].to(device, dtype);
    const auto out = scheduler.step(at(prefix + "mo")[i].to(device, dtype), t,
                                    at(prefix + "x")[i].to(device, dtype), noise);
    EXPECT_EQ(out.prev_sample.scalar_type(), dtype);
    EXPECT_EQ(out.pred_original_sample.scalar_type(), dtype);
    EXPECT_LT(max_abs_diff(out.prev_sample.cpu(), at(prefix + "prev")[i]), cuda ? 2e-2 : 1e-1);
  }
}

TEST(DDPMScheduler, AddNoiseMatchesDiffusers) {
  DDPMScheduler scheduler{DDPMSchedulerConfig{}};
  const torch::Tensor out =
      scheduler.add_noise(at("addnoise_original"), at("addnoise_noise"), at("addnoise_t"));
  EXPECT_LT(max_abs_diff(out, at("addnoise_out")), 1e-6);
  const torch::Tensor out250 =
      scheduler.add_noise(at("addnoise_original"), at("addnoise_noise"), int64_t{250});
  EXPECT_LT(max_abs_diff(out250, at("addnoise_out250")), 1e-6);
}

TEST(DDPMScheduler, ConfigJsonRoundTrip) {
  DDPMSchedulerConfig config;
  config.beta_schedule = BetaSchedule::kScaledLinear;
  config.variance_type = VarianceType::kFixedSmallLog;
  config.prediction_type = PredictionType::kVPrediction;
  config.timestep_spacing = TimestepSpacing::kTrailing;
  config.sample_max_value = 1.0;
  config.steps_offset = 1;
  const nlohmann::json j = config.to_json();
  EXPECT_EQ(j.at("beta_schedule"), "scaled_linear");
  EXPECT_EQ(j.at("variance_type"), "fixed_small_log");
  EXPECT_EQ(j.at("prediction_type"), "v_prediction");
  EXPECT_EQ(j.at("timestep_spacing"), "trailing");
  EXPECT_EQ(DDPMSchedulerConfig::from_json(j).to_json(), j);
}

TEST(DDPMScheduler, DefaultsAreIfStageOne) {
  const nlohmann::json j = DDPMSchedulerConfig{}.to_json();
  // IF-I-XL-v1.0/scheduler/scheduler_config.json (diffusers keys), plus spacing and offset.
  const nlohmann::json if_stage_one = {{"_class_name", "DDPMScheduler"},
                                       {"_diffusers_version", "0.16.0.dev0"},
                                       {"beta_end", 0.02},
                                       {"beta_schedule", "squaredcos_cap_v2"},
                                       {"beta_start", 0.0001},
                                       {"clip_sample", true},
                                       {"clip_sample_range", 1.0},
                                       {"dynamic_thresholding_ratio", 0.95},
                                       {"num_train_timesteps", 1000},
                                       {"prediction_type", "epsilon"},
                                       {"sample_max_value", 1.5},
                                       {"thresholding", true},
                                       {"trained_betas", nullptr},
                                       {"variance_type", "learned_range"}};
  EXPECT_EQ(DDPMSchedulerConfig::from_json(if_stage_one).to_json(), j);
  EXPECT_EQ(j.at("timestep_spacing"), "leading");
  EXPECT_EQ(j.at("steps_offset"), 0);
}

void expect_bundle_error(const nlohmann::json& j, const std::string& needle) {
  try {
    DDPMSchedulerConfig::from_json(j);
    ADD_FAILURE() << "no error for " << j.dump();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kBundle) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(DDPMScheduler, BadConfigsAreBundleErrors) {
  expect_bundle_error({{"beta_schedule", "sigmoid"}},
                      "'beta_schedule' has unsupported value 'sigmoid'");
  expect_bundle_error({{"variance_type", "fixed"}}, "'variance_type'");
  expect_bundle_error({{"prediction_type", "eps"}},
                      "'prediction_type' has unsupported value 'eps'");
  expect_bundle_error({{"timestep_spacing", "karras"}}, "'timestep_spacing'");
  expect_bundle_error({{"num_train_timesteps", "1000"}},
                      "'num_train_timesteps' must be an integer");
  expect_bundle_error({{"num_train_timesteps", 1000.5}}, "'num_train_timesteps'");
  expect_bundle_error({{"thresholding", 1}}, "'thresholding' must be true or false");
  expect_bundle_error({{"sample_max_value", "1.5"}}, "'sample_max_value' must be a number");
  expect_bundle_error({{"trained_betas", {0.1, 0.2}}}, "trained_betas");
  expect_bundle_error({{"variance_type", "fixed_large_log"}}, "fixed_large_log");
  expect_bundle_error({{"dynamic_thresholding_ratio", 1.5}}, "dynamic_thresholding_ratio");
  expect_bundle_error({{"num_train_timesteps", 0}}, "num_train_timesteps");
  expect_bundle_error({{"beta_schedule", "linear"}, {"beta_start", 0.0}}, "beta_start");
  expect_bundle_error({{"steps_offset", -1}}, "steps_offset");
  expect_bundle_error(nlohmann::json::array(), "JSON object");
  // Unknown keys are ignored, null keeps the default.
  EXPECT_NO_THROW(DDPMSchedulerConfig::from_json({{"_class_name", "DDPMScheduler"}, {"foo", 1}}));
  EXPECT_EQ(DDPMSchedulerConfig::from_json({{"variance_type", nullptr}}).variance_type,
            VarianceType::kLearnedRange);
}

template <typename F>
void expect_invalid(F&& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(DDPMScheduler, BadArgumentsAreInvalidArgumentErrors) {
  DDPMScheduler scheduler{DDPMSchedulerConfig{}};
  expect_invalid([&] { scheduler.set_timesteps(0); }, "inference steps");
  expect_invalid([&] { scheduler.set_timesteps(1001); }, "inference steps");
  DDPMSchedulerConfig offset;
  offset.steps_offset = 1;
  expect_invalid([&] { DDPMScheduler(offset).set_timesteps(1000); }, "outside");
  DDPMSchedulerConfig bad;
  bad.clip_sample_range = 0;
  expect_invalid([&] { DDPMScheduler{bad}; }, "clip_sample_range");

  scheduler.set_timesteps(30);
  const torch::Tensor x = torch::zeros({1, 3, 4, 4});
  const torch::Tensor out6 = torch::zeros({1, 6, 4, 4});
  expect_invalid([&] { scheduler.step(out6, 957, x, torch::Tensor()); }, "needs variance_noise");
  expect_invalid([&] { scheduler.step(out6, 1000, x, x); }, "outside");
  expect_invalid([&] { scheduler.step(torch::zeros({1, 3, 4, 4}), 957, x, x); }, "model_output");
  expect_invalid([&] { scheduler.step(torch::zeros({1, 6, 4, 5}), 957, x, x); }, "model_output");
  expect_invalid(
      [&] {
        scheduler.step(out6, 957, x, torch::zeros({1, 3, 4, 5}));
      },
      "variance_noise");
  // No noise is needed (or used) at t == 0.
  EXPECT_NO_THROW(scheduler.step(out6, 0, x, torch::Tensor()));
}

}  // namespace
}  // namespace anagram
