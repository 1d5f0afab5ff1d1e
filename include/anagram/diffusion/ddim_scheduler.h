// anagram/diffusion/ddim_scheduler.h: the DDIM scheduler Stable Diffusion's x4 upscaler samples
// with (stage III, docs/stage3.md), matching diffusers' DDIMScheduler (0.24.0) numerically for
// its configuration: scaled_linear betas, v-prediction, "leading" spacing, steps_offset 1,
// set_alpha_to_one false, no clipping or thresholding. Its config (DDIMSchedulerConfig) is in
// models/scheduler_config.h, with the bundle's other scheduler configs.
//
// Basic usage:
//   anagram::DDIMScheduler scheduler(anagram::DDIMSchedulerConfig{});  // the upscaler's config
//   scheduler.set_timesteps(75);
//   for (int64_t t : scheduler.timesteps()) {
//     torch::Tensor v = unet(latents, t);                                // (B, 4, H, W)
//     latents = scheduler.step(v, t, latents).prev_sample;              // eta 0: no noise
//   }
//
// Where tensors live: the schedule on the host (float32); step() does its tensor math on the
// inputs' own device with host scalars, without synchronisation.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "anagram/models/scheduler_config.h"

namespace anagram {

class DDIMScheduler {
 public:
  struct StepOutput {
    torch::Tensor prev_sample;           // x_{t-1}: the sample's shape, dtype and device
    torch::Tensor pred_original_sample;  // x0
  };

  explicit DDIMScheduler(DDIMSchedulerConfig config);

  // Descending, "leading" spacing: (0..n-1) * (T / n), reversed, plus steps_offset.
  // Throws Error(kInvalidArgument) for n <= 0 or n > num_train_timesteps.
  void set_timesteps(int n);
  const std::vector<int64_t>& timesteps() const { return timesteps_; }
  // t - T / n, as diffusers (negative after the last step: the final alpha product).
  int64_t previous_timestep(int64_t t) const;
  const std::vector<float>& alphas_cumprod() const { return alphas_cumprod_; }
  float final_alpha_cumprod() const { return final_alpha_cumprod_; }

  // One step x_t -> x_{t-1}. model_output: epsilon, x0 or v (the config's prediction type),
  // the sample's shape. eta 0 is deterministic (the upscaler pipeline's default); eta > 0 needs
  // N(0, 1) variance_noise of the sample's shape on its device.
  StepOutput step(const torch::Tensor& model_output, int64_t t, const torch::Tensor& sample,
                  double eta = 0, const torch::Tensor& variance_noise = {}) const;

 private:
  DDIMSchedulerConfig config_;
  std::vector<float> alphas_cumprod_;
  float final_alpha_cumprod_ = 1;
  std::vector<int64_t> timesteps_;
  int num_inference_steps_ = 0;
};

}  // namespace anagram
