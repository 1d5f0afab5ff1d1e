// anagram/diffusion/mtl_combiner.h: noise vector balancing and noise variance rectification.
//
// The combiner of "Diffusion-based Visual Anagram as Multi-task Learning" (Xu et al., WACV
// 2025), docs/algorithm.md steps 5-7:
//   5. alpha_k = s_k ^ -(1 + i / 30), normalised to sum 1, where s_k is the noise-aware CLIP
//      score of task k (the less complete task gets more weight); off: alpha_k = 1/N.
//   6. c = 1 / sqrt(sum_k alpha_k^2 + 2 sum_{k<l} rho_kl alpha_k alpha_l), with rho_kl the mean
//      of eps_k * eps_l (averaging correlated unit-variance noises shrinks their variance);
//      off: c = 1.
//   7. eps = c * sum_k alpha_k eps_k,  var = sum_k alpha_k var_k.
// Everything stays on the device: no host syncs per step. The combiner sees the noise-aware
// CLIP only through a TaskScorer, so tests drive it with analytic dummies.
//
// Basic usage:
//   anagram::TaskScorer scorer = [&](const torch::Tensor& view_inputs, int64_t t) {
//     return clip.scores(view_inputs, t, text_embeddings, /*published_input=*/true);  // (N)
//   };
//   anagram::MultiTaskCombiner combiner(anagram::MtlOptions{}, scorer);
//   anagram::CombinedPrediction out = combiner.combine(tasks);
#pragma once

#include <torch/types.h>

#include <functional>
#include <nlohmann/json.hpp>

#include "anagram/diffusion/combiner.h"

namespace anagram {

// s_k per task: (N, C, S, S) view inputs X_k = v_k(x) on the device and the DDPM timestep ->
// (N) float32 scores on the same device (higher: the task's prompt is further along).
using TaskScorer = std::function<torch::Tensor(const torch::Tensor& view_inputs, int64_t timestep)>;

struct MtlOptions {
  bool balance = true;  // noise vector balancing (needs a noise-aware CLIP)
  bool rectify = true;  // noise variance rectification
  // The published code divides the step index by 30 whatever the step count (quirk); true
  // divides by the actual number of steps.
  bool exact_steps_exponent = false;
  // The published code feeds the CLIP image encoder X/2 + 0.5 (quirk); true feeds X. Read by
  // whoever builds the TaskScorer (the session), recorded in metadata.
  bool exact_clip_input = false;
  // Scores are clamped to at least this before the power, so s_k <= 0 never gives NaN.
  double min_score = 1e-4;

  nlohmann::json to_json() const;
};

class MultiTaskCombiner final : public NoiseCombiner {
 public:
  // `scorer` may be empty when balancing is off. Throws Error(kInvalidArgument) otherwise.
  // Reduction::kSum (factorized views): eps = c * e with e = sum_k f_k(eps_k), weights 1, and
  // c = sqrt(mean_k mean(eps_k^2) / mean(e^2)) over the unfiltered estimates: the sum gets the
  // tasks' own second moment, as the mean's rectification gives it unit variance (c = 1 when
  // every task estimates the same noise and the filters sum to the identity). Balancing is
  // not defined for it (reweighting components breaks their sum to the identity) and throws.
  explicit MultiTaskCombiner(MtlOptions options, TaskScorer scorer = {},
                             Reduction reduction = Reduction::kMean);

  std::string name() const override { return reduction_ == Reduction::kSum ? "mtl-sum" : "mtl"; }
  CombinedPrediction combine(const TaskPredictions& tasks) const override;

  // Exposed for tests: the weights from scores at a step, and the rectification scale.
  torch::Tensor balancing_weights(const torch::Tensor& scores, int step_index, int num_steps) const;
  static torch::Tensor rectification_scale(const torch::Tensor& eps, const torch::Tensor& weights);
  // The kSum counterpart: components f_k(eps_k) and unfiltered eps_k, (N, C, S, S) -> ().
  static torch::Tensor sum_rectification_scale(const torch::Tensor& components,
                                               const torch::Tensor& unfiltered);

 private:
  MtlOptions options_;
  TaskScorer scorer_;
  Reduction reduction_;
};

}  // namespace anagram
