#include "anagram/diffusion/stage_scheduler.h"

#include <cmath>

#include "anagram/diffusion/ddim_scheduler.h"
#include "anagram/diffusion/ddpm_scheduler.h"

namespace anagram {
namespace {

// IF: epsilon plus learned variance channels, DDPM steps with the run's noise.
class DdpmStage final : public StageScheduler {
 public:
  explicit DdpmStage(const DDPMSchedulerConfig& config) : scheduler_(config) {}
  void set_timesteps(int n) override { scheduler_.set_timesteps(n); }
  const std::vector<int64_t>& timesteps() const override { return scheduler_.timesteps(); }
  torch::Tensor epsilon(const torch::Tensor& prediction, int64_t t,
                        const torch::Tensor& x) const override {
    return epsilon_from_prediction(prediction, scheduler_.config().prediction_type, abar(t), x);
  }
  bool needs_noise(int64_t t) const override { return scheduler_.needs_noise(t); }
  torch::Tensor step(const torch::Tensor& eps, const torch::Tensor& variance, int64_t t,
                     const torch::Tensor& x, const torch::Tensor& noise) const override {
    torch::Tensor prediction =
        prediction_from_epsilon(eps, scheduler_.config().prediction_type, abar(t), x);
    if (variance.defined()) prediction = torch::cat({prediction, variance}, 1);
    return scheduler_.step(prediction, t, x, noise).prev_sample;
  }

 private:
  float abar(int64_t t) const { return scheduler_.alphas_cumprod().at(static_cast<size_t>(t)); }
  DDPMScheduler scheduler_;
};

// The x4 upscaler: v (or another type) without variance, deterministic DDIM (eta 0, the
// pipeline's default).
class DdimStage final : public StageScheduler {
 public:
  explicit DdimStage(const DDIMSchedulerConfig& config) : config_(config), scheduler_(config) {}
  void set_timesteps(int n) override { scheduler_.set_timesteps(n); }
  const std::vector<int64_t>& timesteps() const override { return scheduler_.timesteps(); }
  torch::Tensor epsilon(const torch::Tensor& prediction, int64_t t,
                        const torch::Tensor& x) const override {
    return epsilon_from_prediction(prediction, config_.prediction_type, abar(t), x);
  }
  bool needs_noise(int64_t) const override { return false; }
  torch::Tensor step(const torch::Tensor& eps, const torch::Tensor&, int64_t t,
                     const torch::Tensor& x, const torch::Tensor&) const override {
    const torch::Tensor prediction =
        prediction_from_epsilon(eps, config_.prediction_type, abar(t), x);
    return scheduler_.step(prediction, t, x).prev_sample;
  }

 private:
  float abar(int64_t t) const { return scheduler_.alphas_cumprod().at(static_cast<size_t>(t)); }
  DDIMSchedulerConfig config_;
  DDIMScheduler scheduler_;
};

}  // namespace

std::unique_ptr<StageScheduler> make_stage_scheduler(const SchedulerConfig& config) {
  if (const auto* ddpm = std::get_if<DDPMSchedulerConfig>(&config)) {
    return std::make_unique<DdpmStage>(*ddpm);
  }
  return std::make_unique<DdimStage>(std::get<DDIMSchedulerConfig>(config));
}

torch::Tensor epsilon_from_prediction(const torch::Tensor& prediction, PredictionType type,
                                      float abar, const torch::Tensor& x) {
  const float sqrt_alpha = std::sqrt(abar), sqrt_beta = std::sqrt(1.0f - abar);
  switch (type) {
    case PredictionType::kEpsilon:
      return prediction;
    case PredictionType::kVPrediction:
      return sqrt_alpha * prediction + sqrt_beta * x;
    case PredictionType::kSample:
      return (x - sqrt_alpha * prediction) / sqrt_beta;
  }
  return prediction;
}

torch::Tensor prediction_from_epsilon(const torch::Tensor& eps, PredictionType type, float abar,
                                      const torch::Tensor& x) {
  const float sqrt_alpha = std::sqrt(abar), sqrt_beta = std::sqrt(1.0f - abar);
  switch (type) {
    case PredictionType::kEpsilon:
      return eps;
    case PredictionType::kVPrediction:
      return (eps - sqrt_beta * x) / sqrt_alpha;
    case PredictionType::kSample:
      return (x - sqrt_beta * eps) / sqrt_alpha;
  }
  return eps;
}

}  // namespace anagram
