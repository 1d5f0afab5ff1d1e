// anagram/models/scheduler_config.h: a bundle's scheduler configs, typed (the keys of diffusers'
// scheduler_config.json that IF's DDPM and the x4 upscaler's DDIM schedulers use), read when the
// manifest is read.
//
// Basic usage:
//   anagram::DDPMSchedulerConfig config = anagram::DDPMSchedulerConfig::from_json(json);
//   nlohmann::json again = config.to_json();             // diffusers' names and spellings
//   anagram::DDPMScheduler scheduler(config);            // diffusion/ddpm_scheduler.h
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <variant>

namespace anagram {

enum class BetaSchedule { kSquaredcosCapV2, kLinear, kScaledLinear };
enum class VarianceType {
  kFixedSmall,
  kFixedSmallLog,
  kFixedLarge,
  kFixedLargeLog,  // parsed, but rejected by validate(): diffusers 0.24 turns it into NaN
  kLearned,
  kLearnedRange,
};
enum class PredictionType { kEpsilon, kSample, kVPrediction };
enum class TimestepSpacing { kLeading, kTrailing, kLinspace };

// diffusers' scheduler_config.json spellings, e.g. "squaredcos_cap_v2", "learned_range".
std::string to_string(BetaSchedule value);
std::string to_string(VarianceType value);
std::string to_string(PredictionType value);
std::string to_string(TimestepSpacing value);

// The DDPMScheduler config keys IF uses. Defaults are IF stage I's scheduler (IF-I-*-v1.0);
// stage II differs only in sample_max_value = 1.0.
struct DDPMSchedulerConfig {
  int64_t num_train_timesteps = 1000;
  BetaSchedule beta_schedule = BetaSchedule::kSquaredcosCapV2;
  double beta_start = 0.0001;  // linear / scaled_linear only
  double beta_end = 0.02;      // linear / scaled_linear only
  VarianceType variance_type = VarianceType::kLearnedRange;
  PredictionType prediction_type = PredictionType::kEpsilon;
  bool clip_sample = true;  // clamp x0 to +-clip_sample_range (when thresholding is off)
  double clip_sample_range = 1.0;
  bool thresholding = true;                  // dynamic thresholding of x0 (Imagen)
  double dynamic_thresholding_ratio = 0.95;  // quantile of |x0| per sample
  double sample_max_value = 1.5;             // upper clamp of that quantile
  TimestepSpacing timestep_spacing = TimestepSpacing::kLeading;
  int64_t steps_offset = 0;

  // Reads diffusers' scheduler_config.json keys. Missing keys keep this struct's defaults;
  // unknown keys (e.g. "_class_name") are ignored. Throws Error(kBundle) naming the key for a
  // value of the wrong type, an unknown enum string, a non-null "trained_betas", or a config
  // that fails validate().
  static DDPMSchedulerConfig from_json(const nlohmann::json& j);
  nlohmann::json to_json() const;  // every field, diffusers' key names and spellings
  // Throws Error(kInvalidArgument) for values diffusers would reject or mis-compute.
  void validate() const;
};

// Stable Diffusion x4 upscaler's DDIMScheduler (stage III, diffusion/ddim_scheduler.h); the
// defaults are its published config.
struct DDIMSchedulerConfig {
  int64_t num_train_timesteps = 1000;
  BetaSchedule beta_schedule = BetaSchedule::kScaledLinear;  // or kLinear
  double beta_start = 0.0001;
  double beta_end = 0.02;
  PredictionType prediction_type = PredictionType::kVPrediction;
  bool set_alpha_to_one = false;  // the "previous" alpha product after the last step: 1 or abar_0
  int64_t steps_offset = 1;
  // Reads diffusers' DDIMScheduler config keys (missing keys keep these defaults, unknown keys
  // are ignored). Throws Error(kBundle) naming the key for what this program does not
  // implement: clip_sample, thresholding, trained betas, spacings other than "leading",
  // rescale_betas_zero_snr.
  static DDIMSchedulerConfig from_json(const nlohmann::json& j);
  nlohmann::json to_json() const;  // every field, diffusers' key names and spellings
  // Throws Error(kInvalidArgument) for what this scheduler does not implement (the cosine
  // schedule) or values diffusers would mis-compute.
  void validate() const;
};

// A stage's denoising scheduler: IF's stages sample with DDPM, stage III with DDIM.
using SchedulerConfig = std::variant<DDPMSchedulerConfig, DDIMSchedulerConfig>;
nlohmann::json to_json(const SchedulerConfig& config);
int64_t num_train_timesteps(const SchedulerConfig& config);

}  // namespace anagram
