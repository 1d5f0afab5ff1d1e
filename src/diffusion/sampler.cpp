#include "anagram/diffusion/sampler.h"

#include <torch/nn/functional/upsampling.h>

#include "anagram/core/device.h"
#include "anagram/core/error.h"

namespace anagram {

void SamplerParams::validate() const {
  if (steps <= 0) {
    throw Error(ErrorKind::kInvalidArgument, "steps",
                "must be a positive number, got " + std::to_string(steps));
  }
  if (!(guidance_scale >= 0.0)) {
    throw Error(ErrorKind::kInvalidArgument, "guidance", "must be >= 0");
  }
}

StageSpec StageSpec::base(SchedulerConfig scheduler, int64_t channels, int64_t size) {
  StageSpec spec;
  spec.channels = channels;
  spec.size = size;
  spec.scheduler = std::move(scheduler);
  spec.scored_channels = channels;
  return spec;
}

torch::Tensor draw_initial_noise(const StageSpec& stage, NoiseSource& noise) {
  // init_noise_sigma is 1 for DDPM and DDIM: the noise is used as drawn.
  return noise.next({1, stage.channels, stage.size, stage.size});
}

SuperResolutionStart start_super_resolution(SchedulerConfig scheduler,
                                            const DDPMSchedulerConfig& noising_scheduler,
                                            int noise_level, int64_t size,
                                            const torch::Tensor& previous_image, NoiseSource& noise,
                                            int64_t channels, NoiseOrder order) {
  if (channels <= 0) channels = previous_image.size(1);
  SuperResolutionStart start;
  start.spec = StageSpec::base(std::move(scheduler), channels, size);
  if (previous_image.size(-1) == size && previous_image.size(-2) == size) {
    start.upscaled = previous_image;
  } else {
    namespace F = torch::nn::functional;
    start.upscaled = F::interpolate(previous_image, F::InterpolateFuncOptions()
                                                        .size(std::vector<int64_t>{size, size})
                                                        .mode(torch::kBilinear)
                                                        .align_corners(true));
  }
  torch::Tensor augmentation;
  if (order == NoiseOrder::kAugmentationFirst) augmentation = noise.next(start.upscaled.sizes());
  start.x = draw_initial_noise(start.spec, noise);
  if (order == NoiseOrder::kInitialFirst) augmentation = noise.next(start.upscaled.sizes());
  const DDPMScheduler noising(noising_scheduler);
  start.spec.extra_input = noising.add_noise(start.upscaled, augmentation, noise_level);
  start.spec.class_label =
      torch::full({1}, noise_level, torch::dtype(torch::kLong).device(previous_image.device()));
  return start;
}

MultiViewSampler::MultiViewSampler(Denoiser denoiser, StageSpec stage, const ViewStack& views,
                                   Conditioning conditioning, const NoiseCombiner& combiner)
    : denoiser_(std::move(denoiser)),
      stage_(std::move(stage)),
      views_(views),
      conditioning_(std::move(conditioning)),
      combiner_(combiner) {
  const int64_t n = views_.size();
  if (conditioning_.prompts.size(0) != n) {
    throw Error(ErrorKind::kInvalidArgument, "the sampler needs one prompt per view");
  }
  if (views_.height() != stage_.size || views_.width() != stage_.size) {
    throw Error(ErrorKind::kInvalidArgument, "the sampler's views are not at the stage's size");
  }
  // Everything a step combines must live where the views' index tensors do.
  for (const torch::Tensor* t : {&conditioning_.negative, &conditioning_.prompts,
                                 &stage_.extra_input, &stage_.class_label}) {
    if (t->defined() && !same_device(t->device(), views_.device())) {
      throw Error(ErrorKind::kInvalidArgument, "the sampler's views are on " +
                                                   views_.device().str() +
                                                   " but a stage input is on " + t->device().str());
    }
  }
  // Unconditional half first, as in the published pipelines.
  text_batch_ = torch::cat({conditioning_.negative.expand({n, -1, -1}), conditioning_.prompts}, 0);
  if (stage_.class_label.defined()) {
    class_labels_ = stage_.class_label.reshape({1}).expand({2 * n}).contiguous();
  }
}

torch::Tensor MultiViewSampler::step(const StageScheduler& scheduler, const torch::Tensor& x,
                                     int index, const SamplerParams& params,
                                     NoiseSource& noise) const {
  const int64_t n = views_.size();
  const int64_t c = stage_.channels;
  const int64_t t = scheduler.timesteps().at(index);

  // 1. One batch of 2N: every view of the UNet input (x, plus a super-resolution stage's
  // picture: the views act on all its channels), once for the negative and once for its prompt.
  const torch::Tensor input =
      stage_.extra_input.defined() ? torch::cat({x, stage_.extra_input}, 1) : x;
  const torch::Tensor view_inputs = views_.apply_each(input);  // (N, C_in, S, S)
  const torch::Tensor model_input = torch::cat({view_inputs, view_inputs}, 0);

  // 2. One denoiser call for all tasks and both CFG halves.
  const torch::Tensor out = denoiser_(model_input, t, text_batch_, class_labels_);  // (2N, ..)

  // 3. Undo each view on its output. A sign (negate) applies to the prediction channels only:
  // the variance channels are not a signed quantity (as in the published NegateView).
  const torch::Tensor uncond = views_.invert_each(out.narrow(0, 0, n), c);
  const torch::Tensor cond = views_.invert_each(out.narrow(0, n, n), c);

  // 4. Classifier-free guidance on the prediction channels, then each task's noise estimate
  // (the identity for IF's epsilon; eps = sqrt(abar) v + sqrt(1 - abar) x for stage III's v);
  // learned variance, where the model has it, from the conditional half.
  TaskPredictions tasks;
  const auto uncond_prediction = uncond.narrow(1, 0, c);
  tasks.eps = scheduler.epsilon(
      uncond_prediction + params.guidance_scale * (cond.narrow(1, 0, c) - uncond_prediction), t, x);
  tasks.unfiltered_eps = tasks.eps;
  if (stage_.filters) tasks.eps = stage_.filters->apply_each(tasks.eps);
  if (cond.size(1) > c) tasks.variance = cond.narrow(1, c, c);
  if (stage_.scored_channels > 0) {
    tasks.view_inputs = view_inputs.narrow(1, 0, stage_.scored_channels);
  }
  tasks.step_index = index;
  tasks.num_steps = static_cast<int>(scheduler.timesteps().size());
  tasks.timestep = t;

  // 5-7. Reduce the tasks to one estimate.
  CombinedPrediction combined = combiner_.combine(tasks);

  // 8. The scheduler's step; DDPM's noise comes from the run's generator in the published order.
  torch::Tensor variance_noise;
  if (scheduler.needs_noise(t)) variance_noise = noise.next(x.sizes());
  torch::Tensor next = scheduler.step(combined.eps, combined.variance, t, x, variance_noise);

  // 9. Optional per-step optimisation of the new x (the method's anti-segregation).
  const auto& timesteps = scheduler.timesteps();
  if (post_step_hook_ && index + 1 < static_cast<int>(timesteps.size())) {
    next = post_step_hook_(next, index, timesteps[index + 1]);
  }
  if (observer_) {
    observer_(StepRecord{index, tasks.num_steps, t, next, std::move(combined)});
  }
  return next;
}

torch::Tensor MultiViewSampler::run(torch::Tensor x, const SamplerParams& params,
                                    NoiseSource& noise) const {
  params.validate();
  const std::unique_ptr<StageScheduler> scheduler = make_stage_scheduler(stage_.scheduler);
  scheduler->set_timesteps(params.steps);
  torch::NoGradGuard no_grad;
  for (int i = 0; i < params.steps; ++i) {
    x = step(*scheduler, x, i, params, noise);
  }
  return x;
}

torch::Tensor MultiViewSampler::sample(const SamplerParams& params, NoiseSource& noise) const {
  params.validate();
  return run(draw_initial_noise(stage_, noise), params, noise);
}

}  // namespace anagram
