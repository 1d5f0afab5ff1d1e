// anagram/diffusion/sampler.h: the multi-view sampling loop, one for every stage of the cascade
// (docs/method_notes.md has the steps).
//
// Basic usage:
//   anagram::StageSpec stage = anagram::StageSpec::base(scheduler_config);      // stage I, 64x64
//   anagram::MultiViewSampler sampler(denoiser, stage, views, conditioning, combiner);
//   anagram::NoiseSource noise(seed, dtype, device);
//   torch::Tensor image = sampler.sample(params, noise);  // (1, 3, 64, 64) float32 in [-1, 1]
//
// Stage II (64 -> 256) is the same loop with a stage description that adds the upscaled,
// noise-augmented stage I picture as extra input channels (the views act on all 6) and the
// noise level as the UNet's class label. Its initial noise is drawn with draw_initial_noise()
// *before* the augmentation noise, as the published pipelines draw them. Stage III (the x4
// upscaler) is the same loop again on latents: the stage II picture, noised, is the extra
// input, the noise level the class label, the scheduler DDIM with v-prediction; the tasks are
// combined as noise estimates (diffusion/stage_scheduler.h) and its pipeline draws the
// augmentation noise first.
//
// The sampler is a free-standing loop over a Denoiser callback, so tests drive it with a dummy
// and the TorchScript UNet plugs in unchanged. Per step it makes ONE denoiser call: the views
// of x and the two CFG halves batched as [uncond x N, cond x N].
//
// Where tensors live: on the views' device, the one the ViewStack was built for. The
// conditioning and the stage's extra input must be there already (the constructor checks);
// only the noise crosses, drawn on the CPU by NoiseSource and moved there.
#pragma once

#include <torch/types.h>

#include <functional>
#include <vector>

#include "anagram/diffusion/combiner.h"
#include "anagram/diffusion/ddpm_scheduler.h"
#include "anagram/diffusion/noise_source.h"
#include "anagram/diffusion/stage_scheduler.h"
#include "anagram/views/factor.h"
#include "anagram/views/views.h"

namespace anagram {

// (B, C_in, S, S) UNet input, timestep, (B, 77, D) text states, (B) int64 class labels
// (undefined for stage I) -> (B, 2C, S, S) float32 [epsilon, variance] (IF) or (B, C, S, S) in
// the scheduler's prediction type (stage III: v).
using Denoiser =
    std::function<torch::Tensor(const torch::Tensor& x, int64_t timestep, const torch::Tensor& text,
                                const torch::Tensor& class_labels)>;

struct SamplerParams {
  int steps = 30;                // inference steps of the stage's schedule
  double guidance_scale = 10.0;  // classifier-free guidance g
  void validate() const;         // throws anagram::Error(kInvalidArgument)
};

// What differs between IF's stages.
struct StageSpec {
  int64_t channels = 3;  // x is (1, channels, size, size): pixels, or stage III's latents
  int64_t size = 64;
  SchedulerConfig scheduler;
  // (1, E, size, size) concatenated to x before the views are applied (stage II: the upscaled,
  // noise-augmented stage I picture), or undefined.
  torch::Tensor extra_input;
  // (1) int64 label given to every UNet batch entry (stage II: the noise level), or undefined.
  torch::Tensor class_label;
  // The combiner scores (CLIP) the first `scored_channels` channels of each view's input; 0:
  // this stage's inputs cannot be scored (latents) and the combiner weighs the tasks equally.
  int64_t scored_channels = 3;
  // Factorized views: their filters at this stage's size, applied to each task's guided noise
  // estimate before the combiner sums them (views/factor.h), or null for permutation views.
  // Filters are linear, so filtering after guidance equals the published filtering of both
  // halves. Not owned; on the views' device.
  const FilterStack* filters = nullptr;

  static StageSpec base(SchedulerConfig scheduler, int64_t channels = 3, int64_t size = 64);
};

// N(0,1) initial noise of the stage's x shape (1, channels, size, size), drawn from `noise`.
torch::Tensor draw_initial_noise(const StageSpec& stage, NoiseSource& noise);

// Which of a super-resolution stage's two draws comes first in its published pipeline: IF's
// stage II draws the initial noise first, the x4 upscaler the augmentation noise.
enum class NoiseOrder { kInitialFirst, kAugmentationFirst };

// A super-resolution stage's start, drawn in the published order: its initial noise x
// (1, channels, size, size) and the augmentation noise of the previous picture upscaled to
// `size` (bilinear, align_corners=True; as is when it has that size already), noised to
// `noise_level` with the noising schedule. The spec carries the noised picture as extra input
// and the noise level as class label.
struct SuperResolutionStart {
  StageSpec spec;
  torch::Tensor x;         // (1, channels, size, size) initial noise
  torch::Tensor upscaled;  // (1, 3, size, size) before the augmentation noise
};
SuperResolutionStart start_super_resolution(SchedulerConfig scheduler,
                                            const DDPMSchedulerConfig& noising_scheduler,
                                            int noise_level, int64_t size,
                                            const torch::Tensor& previous_image, NoiseSource& noise,
                                            int64_t channels = 0,
                                            NoiseOrder order = NoiseOrder::kInitialFirst);

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

class MultiViewSampler {
 public:
  MultiViewSampler(Denoiser denoiser, StageSpec stage, const ViewStack& views,
                   Conditioning conditioning, const NoiseCombiner& combiner);

  void set_observer(StepObserver observer) { observer_ = std::move(observer); }
  void set_post_step_hook(SampleHook hook) { post_step_hook_ = std::move(hook); }

  // Draws the initial noise and runs the whole schedule. Returns (1, C, S, S) float32.
  torch::Tensor sample(const SamplerParams& params, NoiseSource& noise) const;
  // Runs the whole schedule from the initial noise x (draw_initial_noise).
  torch::Tensor run(torch::Tensor x, const SamplerParams& params, NoiseSource& noise) const;

  // One denoising step from x at schedule position `index` (exposed for tests).
  torch::Tensor step(const StageScheduler& scheduler, const torch::Tensor& x, int index,
                     const SamplerParams& params, NoiseSource& noise) const;

  const StageSpec& stage() const { return stage_; }

 private:
  Denoiser denoiser_;
  StageSpec stage_;
  const ViewStack& views_;
  Conditioning conditioning_;
  torch::Tensor text_batch_;    // (2N, 77, D): [negative x N, prompt_1..prompt_N]
  torch::Tensor class_labels_;  // (2N) int64 or undefined
  const NoiseCombiner& combiner_;
  StepObserver observer_;
  SampleHook post_step_hook_;
};

}  // namespace anagram
