#include "anagram/diffusion/ddim_scheduler.h"

#include <torch/torch.h>

#include <cmath>

#include "anagram/core/error.h"

namespace anagram {

DDIMScheduler::DDIMScheduler(DDIMSchedulerConfig config) : config_(config) {
  config_.validate();
  const int64_t n = config_.num_train_timesteps;
  // Ref: diffusers scheduling_ddim.py __init__: float32 linspace (of the square roots for
  // scaled_linear, then squared), alphas = 1 - betas, torch.cumprod, all in float32.
  const bool scaled = config_.beta_schedule == BetaSchedule::kScaledLinear;
  torch::Tensor betas =
      scaled ? torch::linspace(std::sqrt(config_.beta_start), std::sqrt(config_.beta_end), n,
                               torch::kFloat32)
                   .pow(2)
             : torch::linspace(config_.beta_start, config_.beta_end, n, torch::kFloat32);
  const torch::Tensor cumprod = torch::cumprod(1.0 - betas, 0).contiguous();
  alphas_cumprod_.assign(cumprod.data_ptr<float>(), cumprod.data_ptr<float>() + n);
  final_alpha_cumprod_ = config_.set_alpha_to_one ? 1.0f : alphas_cumprod_.front();
  for (int64_t t = n - 1; t >= 0; --t) timesteps_.push_back(t);
}

void DDIMScheduler::set_timesteps(int n) {
  if (n <= 0 || n > config_.num_train_timesteps) {
    throw Error(ErrorKind::kInvalidArgument, "steps",
                "must be in 1.." + std::to_string(config_.num_train_timesteps));
  }
  num_inference_steps_ = n;
  const int64_t ratio = config_.num_train_timesteps / n;
  timesteps_.clear();
  for (int64_t i = n - 1; i >= 0; --i) timesteps_.push_back(i * ratio + config_.steps_offset);
}

int64_t DDIMScheduler::previous_timestep(int64_t t) const {
  const int64_t steps = num_inference_steps_ > 0 ? num_inference_steps_ : 1;
  return t - config_.num_train_timesteps / steps;
}

DDIMScheduler::StepOutput DDIMScheduler::step(const torch::Tensor& model_output, int64_t t,
                                              const torch::Tensor& sample, double eta,
                                              const torch::Tensor& variance_noise) const {
  if (t < 0 || t >= config_.num_train_timesteps) {
    throw Error(ErrorKind::kInvalidArgument, "timestep", "out of the schedule");
  }
  const int64_t prev = previous_timestep(t);
  // Host float32 scalars, in diffusers' order of operations (its 0-d float32 tensors).
  const float alpha = alphas_cumprod_[static_cast<size_t>(t)];
  const float alpha_prev =
      prev >= 0 ? alphas_cumprod_[static_cast<size_t>(prev)] : final_alpha_cumprod_;
  const float beta = 1.0f - alpha, beta_prev = 1.0f - alpha_prev;
  const float sqrt_alpha = std::sqrt(alpha), sqrt_beta = std::sqrt(beta);
  torch::Tensor x0, eps;
  switch (config_.prediction_type) {
    case PredictionType::kEpsilon:
      x0 = (sample - sqrt_beta * model_output) / sqrt_alpha;
      eps = model_output;
      break;
    case PredictionType::kSample:
      x0 = model_output;
      eps = (sample - sqrt_alpha * x0) / sqrt_beta;
      break;
    case PredictionType::kVPrediction:
      x0 = sqrt_alpha * sample - sqrt_beta * model_output;
      eps = sqrt_alpha * model_output + sqrt_beta * sample;
      break;
  }
  const float variance = (beta_prev / beta) * (1.0f - alpha / alpha_prev);
  const float std_dev = static_cast<float>(eta) * std::sqrt(variance);
  const float direction = std::sqrt(1.0f - alpha_prev - std_dev * std_dev);
  torch::Tensor prev_sample = std::sqrt(alpha_prev) * x0 + direction * eps;
  if (eta > 0) {
    if (!variance_noise.defined() || variance_noise.sizes() != sample.sizes() ||
        variance_noise.device() != sample.device()) {
      throw Error(ErrorKind::kInvalidArgument, "variance_noise",
                  "eta > 0 needs noise of the sample's shape on its device");
    }
    prev_sample = prev_sample + std_dev * variance_noise;
  }
  return {prev_sample, x0};
}

}  // namespace anagram
