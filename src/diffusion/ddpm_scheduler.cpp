#include "anagram/diffusion/ddpm_scheduler.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "anagram/core/error.h"

namespace anagram {
namespace {

[[noreturn]] void invalid(const std::string& what) {
  throw Error(ErrorKind::kInvalidArgument, "DDPM scheduler: " + what);
}

// ---- the beta schedules ----

// Ref: diffusers/schedulers/scheduling_ddpm.py betas_for_alpha_bar (GLIDE's cosine schedule,
// Nichol & Dhariwal 2021, eq. 17): computed in double, then stored as float32.
std::vector<float> squaredcos_cap_v2_betas(int64_t num_steps) {
  constexpr double kPi = 3.141592653589793;  // Python's math.pi
  const auto alpha_bar = [](double t) {
    return std::pow(std::cos((t + 0.008) / 1.008 * kPi / 2), 2.0);
  };
  std::vector<float> betas(num_steps);
  for (int64_t i = 0; i < num_steps; ++i) {
    const double t1 = static_cast<double>(i) / static_cast<double>(num_steps);
    const double t2 = static_cast<double>(i + 1) / static_cast<double>(num_steps);
    betas[i] = static_cast<float>(std::min(1.0 - alpha_bar(t2) / alpha_bar(t1), 0.999));
  }
  return betas;
}

// Ref: scheduling_ddpm.py __init__: torch.linspace in float32 (scaled_linear: of the square
// roots, then squared). torch's own linspace keeps its exact float rounding.
std::vector<float> linspace_betas(double start, double end, int64_t num_steps, bool squared) {
  torch::Tensor betas = torch::linspace(start, end, num_steps, torch::kFloat32);
  if (squared) betas = betas.pow(2);
  betas = betas.contiguous();
  return std::vector<float>(betas.data_ptr<float>(), betas.data_ptr<float>() + num_steps);
}

// numpy's round(): half to even (the default floating-point rounding mode).
int64_t round_half_even(double x) { return static_cast<int64_t>(std::nearbyint(x)); }

// Checks (B, C, ...) shapes that agree except in the channel count.
void check_same_layout(const torch::Tensor& a, const torch::Tensor& b, int64_t channels,
                       const char* name) {
  bool ok = a.dim() == b.dim() && a.size(0) == b.size(0) && a.size(1) == channels;
  for (int64_t d = 2; ok && d < a.dim(); ++d) ok = a.size(d) == b.size(d);
  if (!ok) {
    invalid(std::string(name) + " has shape " + c10::str(a.sizes()) + ", expected " +
            std::to_string(channels) + " channels and otherwise the shape of sample " +
            c10::str(b.sizes()));
  }
  if (a.device() != b.device()) {
    invalid(std::string(name) + " is on " + a.device().str() + " but sample is on " +
            b.device().str());
  }
}

}  // namespace

// ---- scheduler ----

DDPMScheduler::DDPMScheduler(DDPMSchedulerConfig config) : config_(std::move(config)) {
  config_.validate();
  const int64_t n = config_.num_train_timesteps;
  switch (config_.beta_schedule) {
    case BetaSchedule::kSquaredcosCapV2:
      betas_ = squaredcos_cap_v2_betas(n);
      break;
    case BetaSchedule::kLinear:
      betas_ = linspace_betas(config_.beta_start, config_.beta_end, n, /*squared=*/false);
      break;
    case BetaSchedule::kScaledLinear:
      betas_ = linspace_betas(std::pow(config_.beta_start, 0.5), std::pow(config_.beta_end, 0.5), n,
                              /*squared=*/true);
      break;
  }
  // Ref: scheduling_ddpm.py __init__: alphas = 1 - betas (float32); torch.cumprod on the CPU
  // accumulates float32 in double and rounds each partial product to float32.
  alphas_cumprod_.resize(n);
  double product = 1.0;
  for (int64_t i = 0; i < n; ++i) {
    product *= static_cast<double>(1.0f - betas_[i]);
    alphas_cumprod_[i] = static_cast<float>(product);
  }
  timesteps_.resize(n);
  for (int64_t i = 0; i < n; ++i) timesteps_[i] = n - 1 - i;
}

// Ref: scheduling_ddpm.py set_timesteps (spacings of Lin et al. 2023, arXiv 2305.08891 Table 2).
void DDPMScheduler::set_timesteps(int n) {
  const int64_t train = config_.num_train_timesteps;
  if (n <= 0 || n > train) {
    invalid("the number of inference steps must lie in [1, " + std::to_string(train) + "], got " +
            std::to_string(n));
  }
  std::vector<int64_t> steps;
  switch (config_.timestep_spacing) {
    case TimestepSpacing::kLeading: {
      const int64_t ratio = train / n;
      for (int64_t i = n - 1; i >= 0; --i) steps.push_back(i * ratio + config_.steps_offset);
      break;
    }
    case TimestepSpacing::kTrailing: {
      // np.round(np.arange(T, 0, -T / n)) - 1, with numpy's arange arithmetic: length
      // ceil(T / step), element i = T + i * delta where delta = (T - step) - T.
      // Quirk: for some n (e.g. 61, 103 with T = 1000) numpy makes n + 1 elements, the last
      // one -1; diffusers then indexes alphas_cumprod[-1]. We keep the first n (all >= 0).
      const double step = static_cast<double>(train) / n;
      const double start = static_cast<double>(train);
      const double delta = (start - step) - start;
      for (int64_t i = 0; i < n; ++i) {
        const double value = i == 0 ? start : (i == 1 ? start - step : start + i * delta);
        steps.push_back(round_half_even(value) - 1);
      }
      break;
    }
    case TimestepSpacing::kLinspace: {
      // np.linspace(0, T - 1, n).round()[::-1]: element i = i * ((T - 1) / (n - 1)), the last
      // one exactly T - 1.
      for (int64_t i = n - 1; i >= 0; --i) {
        double value = 0.0;
        if (n > 1) {
          const double step = static_cast<double>(train - 1) / (n - 1);
          value = i == n - 1 ? static_cast<double>(train - 1) : i * step;
        }
        steps.push_back(round_half_even(value));
      }
      break;
    }
  }
  for (int64_t t : steps) {
    if (t < 0 || t >= train) {
      invalid("timestep " + std::to_string(t) + " from " + std::to_string(n) +
              " steps with steps_offset " + std::to_string(config_.steps_offset) +
              " lies outside [0, " + std::to_string(train) + ")");
    }
  }
  timesteps_ = std::move(steps);
  num_inference_steps_ = n;
}

// Ref: scheduling_ddpm.py previous_timestep (non-custom timesteps).
int64_t DDPMScheduler::previous_timestep(int64_t t) const {
  const int64_t n = num_inference_steps_ > 0 ? num_inference_steps_ : config_.num_train_timesteps;
  return t - config_.num_train_timesteps / n;
}

// Ref: scheduling_ddpm.py _threshold_sample; Saharia et al. 2022 (Imagen), arXiv 2205.11487.
// x0: (B, C, ...). Per sample: s = clamp(quantile(|x0|, ratio), 1, sample_max_value);
// x0 <- clamp(x0, -s, s) / s. Done in float32 (or float64) and cast back.
torch::Tensor DDPMScheduler::threshold(const torch::Tensor& x0) const {
  const auto dtype = x0.scalar_type();
  torch::Tensor flat = x0;
  if (dtype != torch::kFloat32 && dtype != torch::kFloat64) flat = flat.to(torch::kFloat32);
  flat = flat.reshape({x0.size(0), -1});
  torch::Tensor s = torch::quantile(flat.abs(), config_.dynamic_thresholding_ratio, 1);
  s = torch::clamp(s, 1.0, config_.sample_max_value).unsqueeze(1);  // (B, 1)
  flat = torch::clamp(flat, -s, s) / s;
  return flat.reshape(x0.sizes()).to(dtype);
}

// Ho et al. eq. 15 for epsilon, then dynamic thresholding or plain clipping.
torch::Tensor DDPMScheduler::original_sample(const torch::Tensor& prediction,
                                             const torch::Tensor& sample,
                                             float alpha_prod_t) const {
  const float beta_prod_t = 1.0f - alpha_prod_t;
  torch::Tensor x0;
  switch (config_.prediction_type) {
    case PredictionType::kEpsilon:
      x0 = (sample - std::sqrt(beta_prod_t) * prediction) / std::sqrt(alpha_prod_t);
      break;
    case PredictionType::kSample:
      x0 = prediction;
      break;
    case PredictionType::kVPrediction:
      x0 = std::sqrt(alpha_prod_t) * sample - std::sqrt(beta_prod_t) * prediction;
      break;
  }
  if (config_.thresholding) return threshold(x0);
  if (config_.clip_sample) return x0.clamp(-config_.clip_sample_range, config_.clip_sample_range);
  return x0;
}

// The step's noise scaled by its standard deviation, per the variance type
// (scheduling_ddpm.py _get_variance, then the square root step() takes).
torch::Tensor DDPMScheduler::scaled_noise(const torch::Tensor& noise,
                                          const torch::Tensor& predicted_variance, float posterior,
                                          float current_beta_t) const {
  switch (config_.variance_type) {
    case VarianceType::kFixedSmall:
      return std::sqrt(posterior) * noise;
    case VarianceType::kFixedSmallLog:
      return std::exp(0.5f * std::log(posterior)) * noise;
    case VarianceType::kFixedLarge:
      return std::sqrt(current_beta_t) * noise;
    case VarianceType::kLearned:  // the model's channels are the variance itself
      return torch::sqrt(predicted_variance) * noise;
    case VarianceType::kLearnedRange: {
      // log variance interpolated between log beta~_t (v = -1) and log beta_t (v = +1).
      const float min_log = std::log(posterior);
      const float max_log = std::log(current_beta_t);
      const torch::Tensor frac = (predicted_variance + 1) / 2;
      const torch::Tensor log_variance = frac * max_log + (1 - frac) * min_log;
      return torch::exp(0.5 * log_variance) * noise;
    }
    case VarianceType::kFixedLargeLog:  // rejected by validate()
      break;
  }
  invalid("variance_type '" + to_string(config_.variance_type) + "' is not supported");
}

// Ref: scheduling_ddpm.py step and _get_variance; Ho et al. 2020 (arXiv 2006.11239) eqs. 6, 7,
// 15; learned_range from Nichol & Dhariwal 2021 (arXiv 2102.09672) eq. 15.
// The coefficients are float32 host scalars computed in the order diffusers computes its
// float32 0-d tensors, so they round identically.
DDPMScheduler::StepOutput DDPMScheduler::step(const torch::Tensor& model_output, int64_t t,
                                              const torch::Tensor& sample,
                                              const torch::Tensor& variance_noise) const {
  const int64_t train = config_.num_train_timesteps;
  if (t < 0 || t >= train) {
    invalid("timestep " + std::to_string(t) + " lies outside [0, " + std::to_string(train) + ")");
  }
  if (!model_output.defined() || !sample.defined()) invalid("step() needs defined tensors");
  if (sample.dim() < 2) invalid("sample must be (B, C, ...), got " + c10::str(sample.sizes()));
  const int64_t channels = sample.size(1);
  const bool learned = config_.variance_type == VarianceType::kLearned ||
                       config_.variance_type == VarianceType::kLearnedRange;
  const bool doubled = model_output.dim() >= 2 && model_output.size(1) == 2 * channels;
  check_same_layout(model_output, sample, learned || doubled ? 2 * channels : channels,
                    "model_output");
  torch::Tensor prediction = doubled ? model_output.narrow(1, 0, channels) : model_output;
  torch::Tensor predicted_variance;
  if (learned) predicted_variance = model_output.narrow(1, channels, channels);

  // 1. alphas and betas of this (possibly strided) step.
  const int64_t prev_t = previous_timestep(t);
  const float alpha_prod_t = alphas_cumprod_[t];
  const float alpha_prod_t_prev = prev_t >= 0 ? alphas_cumprod_[prev_t] : 1.0f;
  const float beta_prod_t = 1.0f - alpha_prod_t;
  const float beta_prod_t_prev = 1.0f - alpha_prod_t_prev;
  const float current_alpha_t = alpha_prod_t / alpha_prod_t_prev;
  const float current_beta_t = 1.0f - current_alpha_t;

  // 2-3. Predicted x0, thresholded or clipped.
  const torch::Tensor x0 = original_sample(prediction, sample, alpha_prod_t);

  // 4-5. Posterior mean (Ho et al. eq. 7).
  const float x0_coeff = std::sqrt(alpha_prod_t_prev) * current_beta_t / beta_prod_t;
  const float sample_coeff = std::sqrt(current_alpha_t) * beta_prod_t_prev / beta_prod_t;
  torch::Tensor prev = x0_coeff * x0 + sample_coeff * sample;

  // 6. Noise with the scheduler's variance, except at t == 0.
  if (needs_noise(t)) {
    if (!variance_noise.defined()) {
      invalid("timestep " + std::to_string(t) + " needs variance_noise (see needs_noise())");
    }
    check_same_layout(variance_noise, sample, channels, "variance_noise");
    // Posterior variance beta~_t, clamped because its log is taken.
    const float posterior = std::max(beta_prod_t_prev / beta_prod_t * current_beta_t, 1e-20f);
    prev = prev + scaled_noise(variance_noise, predicted_variance, posterior, current_beta_t);
  }
  return StepOutput{prev, x0};
}

// Ref: scheduling_ddpm.py add_noise (Ho et al. eq. 4): alphas_cumprod in original's dtype.
torch::Tensor DDPMScheduler::add_noise(const torch::Tensor& original, const torch::Tensor& noise,
                                       const torch::Tensor& timesteps) const {
  if (!original.defined() || !noise.defined() || !original.sizes().equals(noise.sizes())) {
    invalid("add_noise needs original and noise of the same shape");
  }
  const auto options = original.options();
  const int64_t n = config_.num_train_timesteps;
  const torch::Tensor abar =
      torch::from_blob(const_cast<float*>(alphas_cumprod_.data()), {n}, torch::kFloat32)
          .to(options.device(), options.dtype().toScalarType());
  const torch::Tensor abar_t = abar.index_select(0, timesteps.to(original.device()).flatten());
  std::vector<int64_t> shape(original.dim(), 1);
  shape[0] = -1;
  const torch::Tensor sqrt_alpha = abar_t.pow(0.5).reshape(shape);
  const torch::Tensor sqrt_one_minus = (1 - abar_t).pow(0.5).reshape(shape);
  return sqrt_alpha * original + sqrt_one_minus * noise;
}

torch::Tensor DDPMScheduler::add_noise(const torch::Tensor& original, const torch::Tensor& noise,
                                       int64_t t) const {
  if (t < 0 || t >= config_.num_train_timesteps) {
    invalid("timestep " + std::to_string(t) + " lies outside [0, " +
            std::to_string(config_.num_train_timesteps) + ")");
  }
  return add_noise(original, noise, torch::tensor({t}, torch::kInt64));
}

}  // namespace anagram
