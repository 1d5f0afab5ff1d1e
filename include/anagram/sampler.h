// anagram/sampler.h: the stage I multi-view sampling loop (ALGORITHM.md, steps 1-10).
//
// Basic usage:
//   anagram::StageOneSampler sampler(denoiser, scheduler_config, views, conditioning, combiner);
//   anagram::NoiseSource noise(seed, dtype, device);
//   torch::Tensor image = sampler.sample(params, noise);  // (1, 3, 64, 64) float32 in [-1, 1]
//
// The sampler is a free-standing loop over a Denoiser callback, so tests drive it with a dummy
// and the TorchScript UNet plugs in unchanged. Per step it makes ONE denoiser call: the views
// of x and the two CFG halves batched as [uncond x N, cond x N].
#pragma once

#include <torch/types.h>

#include <functional>
#include <vector>

#include "anagram/combiner.h"
#include "anagram/ddpm_scheduler.h"
#include "anagram/noise_source.h"
#include "anagram/views.h"

namespace anagram {

// (B, C, S, S) sample batch, DDPM timestep, (B, 77, D) text states -> (B, 2C, S, S) float32.
using Denoiser =
    std::function<torch::Tensor(const torch::Tensor& x, int64_t timestep, const torch::Tensor&)>;

struct SamplerParams {
  int steps = 30;                // inference steps of the DDPM schedule
  double guidance_scale = 10.0;  // classifier-free guidance g
  void validate() const;         // throws anagram::Error(kInvalidArgument)
};

struct Conditioning {
  torch::Tensor negative;  // (1, 77, D) float32: the encoded negative ("") prompt
  torch::Tensor prompts;   // (N, 77, D) float32: prompt k belongs to view k
};

// What the sampler reports after each step (tensors stay on the device).
struct StepRecord {
  int index = 0;  // 0-based
  int num_steps = 0;
  int64_t timestep = 0;
  torch::Tensor sample;  // (1, C, S, S) x after this step
  CombinedPrediction combined;
};
using StepObserver = std::function<void(const StepRecord&)>;

// Runs after the scheduler step and may replace x: the extension point for per-step
// optimisation of the latent (the method's anti-segregation). Gets the index of the step just
// taken and the next timestep.
using SampleHook =
    std::function<torch::Tensor(const torch::Tensor& x, int step_index, int64_t next_timestep)>;

class StageOneSampler {
 public:
  // channels/size: the picture the denoiser works on (3 and 64 for IF stage I).
  StageOneSampler(Denoiser denoiser, DDPMSchedulerConfig scheduler_config, const ViewStack& views,
                  Conditioning conditioning, const NoiseCombiner& combiner, int64_t channels,
                  int64_t size);

  void set_observer(StepObserver observer) { observer_ = std::move(observer); }
  void set_post_step_hook(SampleHook hook) { post_step_hook_ = std::move(hook); }

  // Draws the initial noise and runs the whole schedule. Returns (1, C, S, S) float32.
  torch::Tensor sample(const SamplerParams& params, NoiseSource& noise) const;

  // One denoising step from x at schedule position `index` (exposed for tests).
  torch::Tensor step(const DDPMScheduler& scheduler, const torch::Tensor& x, int index,
                     const SamplerParams& params, NoiseSource& noise) const;

 private:
  Denoiser denoiser_;
  DDPMSchedulerConfig scheduler_config_;
  const ViewStack& views_;
  Conditioning conditioning_;
  torch::Tensor text_batch_;  // (2N, 77, D): [negative x N, prompt_1..prompt_N]
  const NoiseCombiner& combiner_;
  int64_t channels_;
  int64_t size_;
  StepObserver observer_;
  SampleHook post_step_hook_;
};

}  // namespace anagram
