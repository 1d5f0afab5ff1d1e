// anagram/diffusion/stage_scheduler.h: a stage's scheduler as the multi-view sampler drives it.
//
// IF's stages predict noise (epsilon) plus a learned variance and step with DDPM; the x4
// upscaler of stage III predicts v and steps with DDIM. The tasks of a step are combined in
// one quantity whatever the stage: the noise estimate, since the method's rectification is
// defined on unit-variance noise (docs/method_notes.md, "Stage III"). So the sampler asks the
// stage's scheduler to turn each task's guided prediction into epsilon, combines, and hands
// the combined epsilon back for the step.
//
// Basic usage:
//   std::unique_ptr<anagram::StageScheduler> scheduler =
//       anagram::make_stage_scheduler(manifest.stage(3).scheduler);  // a SchedulerConfig
//   scheduler->set_timesteps(75);
//   for (int64_t t : scheduler->timesteps()) {
//     torch::Tensor eps = scheduler->epsilon(guided_prediction, t, x);  // (N, C, S, S)
//     torch::Tensor noise;
//     if (scheduler->needs_noise(t)) noise = source.next(x.sizes());
//     x = scheduler->step(eps.mean(0, true), /*variance=*/{}, t, x, noise);
//   }
//
// Where tensors live: the schedule on the host; every tensor operation on the inputs' device,
// with host scalars (no synchronisation).
#pragma once

#include <torch/types.h>

#include <memory>
#include <vector>

#include "anagram/models/scheduler_config.h"

namespace anagram {

class StageScheduler {
 public:
  virtual ~StageScheduler() = default;
  // Throws Error(kInvalidArgument) for n <= 0 or n > the training timesteps.
  virtual void set_timesteps(int n) = 0;
  virtual const std::vector<int64_t>& timesteps() const = 0;
  // The model's (guided) prediction in the config's prediction type, (N, C, S, S), at x_t
  // (1, C, S, S) -> the noise estimate epsilon, (N, C, S, S). Identity for epsilon models.
  virtual torch::Tensor epsilon(const torch::Tensor& prediction, int64_t t,
                                const torch::Tensor& x) const = 0;
  // Whether step(t) needs N(0, 1) noise of x's shape.
  virtual bool needs_noise(int64_t t) const = 0;
  // x_t -> x_{t-1} from the combined epsilon (1, C, S, S); `variance`: the combined learned
  // variance channels for a model that predicts them, else undefined.
  virtual torch::Tensor step(const torch::Tensor& eps, const torch::Tensor& variance, int64_t t,
                             const torch::Tensor& x, const torch::Tensor& noise) const = 0;
};

// DDPMScheduler for a DDPM config, DDIMScheduler (eta 0) for a DDIM config.
std::unique_ptr<StageScheduler> make_stage_scheduler(const SchedulerConfig& config);

// The conversions between a prediction type and epsilon at x_t with alpha product `abar`:
//   v = sqrt(abar) eps - sqrt(1 - abar) x0   <=>   eps = sqrt(abar) v + sqrt(1 - abar) x_t
//   x0 = (x_t - sqrt(1 - abar) eps) / sqrt(abar)
torch::Tensor epsilon_from_prediction(const torch::Tensor& prediction, PredictionType type,
                                      float abar, const torch::Tensor& x);
torch::Tensor prediction_from_epsilon(const torch::Tensor& eps, PredictionType type, float abar,
                                      const torch::Tensor& x);

}  // namespace anagram
