// DDIM scheduler (stage III's, the x4 upscaler's configuration) against diffusers 0.24.0: golden
// values from scripts/golden/golden_ddim.py (tests/golden/ddim_upscaler.pt).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "anagram/core/error.h"
#include "anagram/diffusion/ddim_scheduler.h"
#include "golden_io.h"

namespace anagram {
namespace {

using anagram::testing::max_abs_diff;
using Golden = std::map<std::string, torch::Tensor>;

const Golden& golden() {
  static const Golden tensors =
      anagram::testing::load_golden(std::string(ANAGRAM_GOLDEN_DIR) + "/ddim_upscaler.pt");
  return tensors;
}

const torch::Tensor& at(const std::string& name) {
  return anagram::testing::golden_tensor(golden(), name);
}

// The golden script's configuration is the one DDIMSchedulerConfig{} holds.
TEST(DDIMScheduler, DefaultsAreTheUpscalersConfig) {
  const torch::Tensor bytes = at("upscaler_config_json").contiguous();
  const auto j = nlohmann::json::parse(
      std::string(reinterpret_cast<const char*>(bytes.data_ptr<uint8_t>()), bytes.numel()));
  const DDIMSchedulerConfig c;
  EXPECT_EQ(j.at("num_train_timesteps").get<int64_t>(), c.num_train_timesteps);
  EXPECT_EQ(j.at("beta_schedule").get<std::string>(), "scaled_linear");
  EXPECT_DOUBLE_EQ(j.at("beta_start").get<double>(), c.beta_start);
  EXPECT_DOUBLE_EQ(j.at("beta_end").get<double>(), c.beta_end);
  EXPECT_EQ(j.at("prediction_type").get<std::string>(), "v_prediction");
  EXPECT_EQ(j.at("set_alpha_to_one").get<bool>(), c.set_alpha_to_one);
  EXPECT_EQ(j.at("steps_offset").get<int64_t>(), c.steps_offset);
  EXPECT_FALSE(j.at("clip_sample").get<bool>());
  EXPECT_EQ(j.value("timestep_spacing", "leading"), "leading");
}

TEST(DDIMScheduler, ScheduleAndTimestepsMatchDiffusers) {
  DDIMScheduler s{DDIMSchedulerConfig{}};
  const torch::Tensor ours = torch::tensor(s.alphas_cumprod());
  EXPECT_LE(max_abs_diff(ours, at("upscaler_alphas_cumprod")), 1e-7);
  EXPECT_FLOAT_EQ(s.final_alpha_cumprod(), at("upscaler_final_alpha_cumprod").item<float>());
  for (const int n : {1, 2, 3, 7, 16, 20, 50, 61, 75, 100, 103, 250, 333, 999}) {
    s.set_timesteps(n);
    EXPECT_EQ(s.timesteps(), anagram::testing::to_int64_vector(at("ts_" + std::to_string(n)))) << n;
    std::vector<int64_t> prev;
    for (const int64_t t : s.timesteps()) prev.push_back(s.previous_timestep(t));
    EXPECT_EQ(prev, anagram::testing::to_int64_vector(at("prevt_" + std::to_string(n)))) << n;
  }
}

// Two sampling loops driven by the golden's recorded model outputs: eta 0 (the pipeline's
// default, deterministic) and eta 1 (with the recorded variance noise).
TEST(DDIMScheduler, StepLoopsMatchDiffusers) {
  for (const auto& [steps, eta] : {std::pair{7, 0}, std::pair{5, 1}}) {
    const std::string key = "upscaler_n" + std::to_string(steps) + "_eta" + std::to_string(eta);
    DDIMScheduler s{DDIMSchedulerConfig{}};
    s.set_timesteps(steps);
    ASSERT_EQ(s.timesteps(), anagram::testing::to_int64_vector(at(key + "_ts")));
    for (int i = 0; i < steps; ++i) {
      const int64_t t = s.timesteps()[static_cast<size_t>(i)];
      const auto out = s.step(at(key + "_mo")[i], t, at(key + "_x")[i], eta, at(key + "_noise")[i]);
      EXPECT_LE(max_abs_diff(out.prev_sample, at(key + "_prev")[i]), 1e-6) << key << " step " << i;
      EXPECT_LE(max_abs_diff(out.pred_original_sample, at(key + "_x0")[i]), 1e-6)
          << key << " step " << i;
    }
  }
}

TEST(DDIMScheduler, BadInputIsRefused) {
  DDIMSchedulerConfig cosine;
  cosine.beta_schedule = BetaSchedule::kSquaredcosCapV2;
  EXPECT_THROW(DDIMScheduler{cosine}, Error);
  DDIMScheduler s{DDIMSchedulerConfig{}};
  EXPECT_THROW(s.set_timesteps(0), Error);
  EXPECT_THROW(s.set_timesteps(1001), Error);
  s.set_timesteps(10);
  const torch::Tensor x = torch::zeros({1, 4, 8, 8});
  EXPECT_THROW(s.step(x, 1000, x), Error);
  EXPECT_THROW(s.step(x, 901, x, /*eta=*/1.0), Error);  // no noise given
}

}  // namespace
}  // namespace anagram
