#include "anagram/diffusion/mtl_combiner.h"

#include "anagram/core/error.h"

namespace anagram {

// The step count the published code divides by, whatever --steps is.
constexpr double kPublishedStepCount = 30.0;

nlohmann::json MtlOptions::to_json() const {
  return {{"balance", balance},
          {"rectify", rectify},
          {"exact_steps_exponent", exact_steps_exponent},
          {"exact_clip_input", exact_clip_input},
          {"min_score", min_score}};
}

MultiTaskCombiner::MultiTaskCombiner(MtlOptions options, TaskScorer scorer, Reduction reduction)
    : options_(options), scorer_(std::move(scorer)), reduction_(reduction) {
  if (options_.balance && reduction_ == Reduction::kSum) {
    throw Error(ErrorKind::kInvalidArgument,
                "noise vector balancing is not defined for factorized views");
  }
  if (options_.balance && !scorer_) {
    throw Error(ErrorKind::kInvalidArgument,
                "noise vector balancing needs a bundle with a noise-aware CLIP");
  }
}

torch::Tensor MultiTaskCombiner::balancing_weights(const torch::Tensor& scores, int step_index,
                                                   int num_steps) const {
  // Ref: Anagram-MTL visual_anagrams/mtl.py: alpha = s ** (-1 - step / 30), normalised.
  const double divisor = options_.exact_steps_exponent ? num_steps : kPublishedStepCount;
  const double exponent = -1.0 - step_index / divisor;
  const torch::Tensor raw = scores.clamp_min(options_.min_score).pow(exponent);
  return raw / raw.sum();
}

torch::Tensor MultiTaskCombiner::rectification_scale(const torch::Tensor& eps,
                                                     const torch::Tensor& weights) {
  // rho_kl = mean(eps_k * eps_l); the variance of sum_k alpha_k eps_k for unit-variance eps_k
  // is sum_k alpha_k^2 + 2 sum_{k<l} rho_kl alpha_k alpha_l.
  const int64_t n = eps.size(0);
  const torch::Tensor flat = eps.reshape({n, -1});
  const torch::Tensor rho = flat.matmul(flat.t()) / static_cast<double>(flat.size(1));
  const torch::Tensor off_diagonal = rho.triu(1);
  const torch::Tensor variance =
      weights.pow(2).sum() + 2 * weights.matmul(off_diagonal.matmul(weights));
  return variance.rsqrt();
}

namespace {

const torch::Tensor& unfiltered(const TaskPredictions& tasks) {
  return tasks.unfiltered_eps.defined() ? tasks.unfiltered_eps : tasks.eps;
}

}  // namespace

torch::Tensor MultiTaskCombiner::sum_rectification_scale(const torch::Tensor& components,
                                                         const torch::Tensor& unfiltered) {
  const torch::Tensor own = unfiltered.pow(2).mean();  // the tasks' mean square
  const torch::Tensor combined = components.sum(0).pow(2).mean();
  return (own / combined).sqrt();
}

CombinedPrediction MultiTaskCombiner::combine(const TaskPredictions& tasks) const {
  if (reduction_ == Reduction::kSum) {
    const auto ones = torch::ones({tasks.eps.size(0)}, tasks.eps.options());
    const torch::Tensor scale = options_.rectify
                                    ? sum_rectification_scale(tasks.eps, unfiltered(tasks))
                                    : torch::ones({}, ones.options());
    CombinedPrediction out = weighted_combination(tasks, ones, scale);
    // As the published sampler (stage III predicts no variance).
    if (tasks.variance.defined()) out.variance = tasks.variance.mean(0, /*keepdim=*/true);
    return out;
  }
  const int64_t n = tasks.eps.size(0);
  const auto options = tasks.eps.options();
  torch::Tensor scores;
  torch::Tensor weights;
  // A stage whose inputs cannot be scored (stage III's latents) weighs the tasks equally.
  if (options_.balance && tasks.view_inputs.defined()) {
    scores = scorer_(tasks.view_inputs, tasks.timestep);
    weights = balancing_weights(scores, tasks.step_index, tasks.num_steps);
  } else {
    weights = torch::full({n}, 1.0 / static_cast<double>(n), options);
  }
  const torch::Tensor scale =
      options_.rectify ? rectification_scale(tasks.eps, weights) : torch::ones({}, options);
  CombinedPrediction out = weighted_combination(tasks, weights, scale);
  out.scores = scores;
  return out;
}

}  // namespace anagram
