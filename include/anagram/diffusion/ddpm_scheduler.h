// anagram/diffusion/ddpm_scheduler.h: the DDPM scheduler DeepFloyd IF samples with, matching
// diffusers' DDPMScheduler (0.24.0) numerically.
//
// Basic usage:
//   anagram::DDPMScheduler scheduler(manifest.stage(1).scheduler);  // a DDPMSchedulerConfig
//   scheduler.set_timesteps(30);
//   for (int64_t t : scheduler.timesteps()) {
//     torch::Tensor out = unet(x, t);                                   // (B, 2C, H, W)
//     torch::Tensor noise;                                              // undefined at t == 0
//     if (scheduler.needs_noise(t)) noise = draw_cpu_noise(x.sizes()).to(x.device());
//     x = scheduler.step(out, t, x, noise).prev_sample;                 // (B, C, H, W)
//   }
//
// The schedule (betas, alphas_cumprod) lives on the host as float32, computed with the same
// float32 operations as diffusers; step() turns the few coefficients it needs into scalars and
// does all tensor math on the tensors' own device, without host synchronisation.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "anagram/models/scheduler_config.h"

namespace anagram {

class DDPMScheduler {
 public:
  struct StepOutput {
    torch::Tensor prev_sample;           // x_{t-1}: (B, C, H, W), sample's dtype and device
    torch::Tensor pred_original_sample;  // x0 after clipping/thresholding: (B, C, H, W)
  };

  // Validates the config (throws Error(kInvalidArgument)) and builds the schedule.
  explicit DDPMScheduler(DDPMSchedulerConfig config);

  // Inference timesteps, descending, as diffusers' set_timesteps(n) makes them.
  // Throws Error(kInvalidArgument) for n <= 0 or n > num_train_timesteps.
  void set_timesteps(int n);
  // Descending; all num_train_timesteps values until set_timesteps() is called.
  const std::vector<int64_t>& timesteps() const { return timesteps_; }
  int num_inference_steps() const { return num_inference_steps_; }

  // diffusers' rule t - num_train_timesteps / n (negative after the last step). Note that for
  // "trailing" and "linspace" spacing this is not always the next entry of timesteps(): diffusers
  // does the same, and so do we.
  int64_t previous_timestep(int64_t t) const;
  // Whether step(t) adds variance noise, i.e. t > 0; the caller draws the noise only then.
  bool needs_noise(int64_t t) const { return t > 0; }

  // One reverse step x_t -> x_{t-1}.
  //   model_output: (B, 2C, H, W) = [epsilon-or-x0-or-v, variance] for learned / learned_range;
  //                 (B, C, H, W) otherwise ((B, 2C, H, W) is accepted and its second half ignored)
  //   t:            a timestep in [0, num_train_timesteps)
  //   sample:       x_t, (B, C, H, W) float, same device as model_output
  //   variance_noise: N(0,1) noise (B, C, H, W) on the same device; required when needs_noise(t),
  //                 ignored (may be undefined) otherwise.
  // Throws Error(kInvalidArgument) for shape or device mismatches and t out of range.
  StepOutput step(const torch::Tensor& model_output, int64_t t, const torch::Tensor& sample,
                  const torch::Tensor& variance_noise) const;

  // Forward process q(x_t | x_0): sqrt(abar_t) * original + sqrt(1 - abar_t) * noise.
  //   original, noise: (B, ...) same shape; timesteps: (B,) or 0-d int64 tensor (any device).
  // The result keeps original's dtype and device (used for stage II's low-res conditioning).
  torch::Tensor add_noise(const torch::Tensor& original, const torch::Tensor& noise,
                          const torch::Tensor& timesteps) const;
  torch::Tensor add_noise(const torch::Tensor& original, const torch::Tensor& noise,
                          int64_t t) const;

  const DDPMSchedulerConfig& config() const { return config_; }
  const std::vector<float>& betas() const { return betas_; }                    // (T,)
  const std::vector<float>& alphas_cumprod() const { return alphas_cumprod_; }  // (T,)

 private:
  torch::Tensor threshold(const torch::Tensor& x0) const;
  torch::Tensor original_sample(const torch::Tensor& prediction, const torch::Tensor& sample,
                                float alpha_prod_t) const;
  torch::Tensor scaled_noise(const torch::Tensor& noise, const torch::Tensor& predicted_variance,
                             float posterior, float current_beta_t) const;

  DDPMSchedulerConfig config_;
  std::vector<float> betas_;
  std::vector<float> alphas_cumprod_;
  std::vector<int64_t> timesteps_;
  int num_inference_steps_ = 0;  // 0 until set_timesteps()
};

}  // namespace anagram
