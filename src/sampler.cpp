#include "anagram/sampler.h"

#include "anagram/error.h"

namespace anagram {

void SamplerParams::validate() const {
  if (steps <= 0) {
    throw Error(ErrorKind::kInvalidArgument,
                "--steps must be a positive number, got " + std::to_string(steps));
  }
  if (!(guidance_scale >= 0.0)) {
    throw Error(ErrorKind::kInvalidArgument, "--guidance must be >= 0");
  }
}

StageOneSampler::StageOneSampler(Denoiser denoiser, DDPMSchedulerConfig scheduler_config,
                                 const ViewStack& views, Conditioning conditioning,
                                 const NoiseCombiner& combiner, int64_t channels, int64_t size)
    : denoiser_(std::move(denoiser)),
      scheduler_config_(std::move(scheduler_config)),
      views_(views),
      conditioning_(std::move(conditioning)),
      combiner_(combiner),
      channels_(channels),
      size_(size) {
  const int64_t n = views_.size();
  if (conditioning_.prompts.size(0) != n) {
    throw Error(ErrorKind::kInvalidArgument, "the sampler needs one prompt per view");
  }
  // Unconditional half first, as in the published pipelines.
  text_batch_ = torch::cat({conditioning_.negative.expand({n, -1, -1}), conditioning_.prompts}, 0);
}

torch::Tensor StageOneSampler::step(const DDPMScheduler& scheduler, const torch::Tensor& x,
                                    int index, const SamplerParams& params,
                                    NoiseSource& noise) const {
  const int64_t n = views_.size();
  const int64_t t = scheduler.timesteps().at(index);

  // 1. One batch of 2N: every view of x, once for the negative and once for its prompt.
  const torch::Tensor view_inputs = views_.apply_each(x);  // (N, C, S, S)
  const torch::Tensor model_input = torch::cat({view_inputs, view_inputs}, 0);

  // 2. One denoiser call for all tasks and both CFG halves.
  const torch::Tensor out = denoiser_(model_input, t, text_batch_);  // (2N, 2C, S, S)

  // 3. Undo each view on its output. A sign (negate) applies to the noise channels only: the
  // variance channels are not a signed quantity (as in the published NegateView).
  const torch::Tensor uncond = views_.invert_each(out.narrow(0, 0, n), channels_);
  const torch::Tensor cond = views_.invert_each(out.narrow(0, n, n), channels_);

  // 4. Classifier-free guidance on the noise channels; variance from the conditional half.
  TaskPredictions tasks;
  const auto uncond_eps = uncond.narrow(1, 0, channels_);
  tasks.eps = uncond_eps + params.guidance_scale * (cond.narrow(1, 0, channels_) - uncond_eps);
  tasks.variance = cond.narrow(1, channels_, channels_);
  tasks.view_inputs = view_inputs;
  tasks.step_index = index;
  tasks.num_steps = static_cast<int>(scheduler.timesteps().size());
  tasks.timestep = t;

  // 5-7. Reduce the tasks to one estimate.
  CombinedPrediction combined = combiner_.combine(tasks);

  // 8. DDPM step; its noise comes from the run's generator in the published order.
  torch::Tensor variance_noise;
  if (scheduler.needs_noise(t)) variance_noise = noise.next(x.sizes());
  torch::Tensor next =
      scheduler.step(torch::cat({combined.eps, combined.variance}, 1), t, x, variance_noise)
          .prev_sample;

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

torch::Tensor StageOneSampler::sample(const SamplerParams& params, NoiseSource& noise) const {
  params.validate();
  DDPMScheduler scheduler(scheduler_config_);
  scheduler.set_timesteps(params.steps);
  torch::NoGradGuard no_grad;
  torch::Tensor x = noise.next({1, channels_, size_, size_});
  for (int i = 0; i < params.steps; ++i) {
    x = step(scheduler, x, i, params, noise);
  }
  return x;
}

}  // namespace anagram
