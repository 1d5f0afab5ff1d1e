// anagram/diffusion/combiner.h: reducing the tasks' noise estimates of one step to a single
// estimate.
//
// Every (view, prompt) pair is a task. After the views are undone, each task k has a noise
// estimate eps_k and a variance estimate var_k for the same image. A combiner picks weights
// alpha_k (summing to 1) and a scale c, and returns (docs/algorithm.md step 7)
//   eps = c * sum_k alpha_k eps_k,   var = sum_k alpha_k var_k.
// MeanCombiner is the baseline of Geng et al. (alpha_k = 1/N, c = 1). Factorized views
// (views/factor.h) reduce by summing instead: their estimates are filtered components of one
// estimate (alpha_k = 1; the variance is still the mean, as the published sampler has it).
//
// Basic usage:
//   anagram::MeanCombiner mean;                        // or MultiTaskCombiner (mtl_combiner.h)
//   anagram::CombinedPrediction out = mean.combine(tasks);  // tasks: TaskPredictions of a step
//   // out.eps (1, C, S, S) goes to the scheduler's step
#pragma once

#include <torch/types.h>

#include <string>

namespace anagram {

// What a combiner sees at one denoising step. All tensors live on the sampling device.
struct TaskPredictions {
  torch::Tensor eps;  // (N, C, S, S) float32: CFG-guided noise estimate per task
  // The same before factorized views' filters (equal to eps for permutation views): what
  // rectifying a sum of components compares it with.
  torch::Tensor unfiltered_eps;
  // (N, C, S, S) float32: learned-range variance channels per task; undefined for a model
  // without them (stage III), and then so is the combined variance.
  torch::Tensor variance;
  // (N, C, S, S) float32: X_k = v_k(x), what task k's UNet saw; undefined where the stage's
  // inputs cannot be scored (latents): balancing then weighs the tasks equally.
  torch::Tensor view_inputs;
  int step_index = 0;  // 0-based index into the schedule
  int num_steps = 0;
  int64_t timestep = 0;
};

struct CombinedPrediction {
  torch::Tensor eps;       // (1, C, S, S) float32
  torch::Tensor variance;  // (1, C, S, S) float32
  torch::Tensor weights;   // (N) float32 alpha_k, kept on the device (recorded per step)
  torch::Tensor scale;     // () float32 c, kept on the device
  torch::Tensor scores;    // (N) float32 task scores s_k where balancing used them, else undefined
};

// How the tasks' estimates are reduced: permutation views average them (Visual Anagrams),
// factorized views sum their filtered components (Factorized Diffusion, reduction='sum').
enum class Reduction { kMean, kSum };

class NoiseCombiner {
 public:
  virtual ~NoiseCombiner() = default;
  virtual std::string name() const = 0;
  virtual CombinedPrediction combine(const TaskPredictions& tasks) const = 0;
};

// The baseline: Geng et al.'s plain mean of the tasks' estimates, or (kSum) the plain sum of
// factorized components.
class MeanCombiner final : public NoiseCombiner {
 public:
  explicit MeanCombiner(Reduction reduction = Reduction::kMean) : reduction_(reduction) {}
  std::string name() const override { return reduction_ == Reduction::kSum ? "sum" : "mean"; }
  CombinedPrediction combine(const TaskPredictions& tasks) const override;

 private:
  Reduction reduction_;
};

// eps = scale * sum_k weights_k eps_k, var = sum_k weights_k var_k, without leaving the device.
CombinedPrediction weighted_combination(const TaskPredictions& tasks, const torch::Tensor& weights,
                                        const torch::Tensor& scale);

}  // namespace anagram
