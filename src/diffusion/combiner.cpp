#include "anagram/diffusion/combiner.h"

namespace anagram {

CombinedPrediction weighted_combination(const TaskPredictions& tasks, const torch::Tensor& weights,
                                        const torch::Tensor& scale) {
  const auto w = weights.view({-1, 1, 1, 1});
  CombinedPrediction out;
  out.eps = scale * (w * tasks.eps).sum(0, /*keepdim=*/true);
  if (tasks.variance.defined()) out.variance = (w * tasks.variance).sum(0, /*keepdim=*/true);
  out.weights = weights;
  out.scale = scale;
  return out;
}

CombinedPrediction MeanCombiner::combine(const TaskPredictions& tasks) const {
  const int64_t n = tasks.eps.size(0);
  const auto options = tasks.eps.options();
  const bool sum = reduction_ == Reduction::kSum;
  CombinedPrediction out;
  // The mean (or sum) itself, not sum(w * eps) with w = 1/N: what the published code computes.
  out.eps = sum ? tasks.eps.sum(0, /*keepdim=*/true) : tasks.eps.mean(0, /*keepdim=*/true);
  if (tasks.variance.defined()) out.variance = tasks.variance.mean(0, /*keepdim=*/true);
  out.weights = torch::full({n}, sum ? 1.0 : 1.0 / static_cast<double>(n), options);
  out.scale = torch::ones({}, options);
  return out;
}

}  // namespace anagram
