// anagram/diffusion/antiseg.h: anti-segregation optimisation of the latent (docs/algorithm.md step
// 9).
//
// Each task's concept should not live in its own corner of the picture. After the DDPM step of
// the first K steps, x takes one gradient step that pushes the overlap of the tasks' concept
// attention maps towards a target:
//   M_k   = sum over the 32x32 cross-attention layers of the concept-token columns of task k's
//           attention, with view k undone on the 32x32 map (UNet at the *next* timestep on
//           v_k(x), conditional batch only: the unconditional half does not reach the loss);
//   loss  = mean over pairs k<l of | target - sum(min(M_k, M_l)) / sum(M_k + M_l) |;
//   x    <- x - lr * d loss / d x.
//
// Basic usage (the sampler's post-step hook):
//   anagram::AttentionProbe probe = [&](const torch::Tensor& x, int64_t t, const torch::Tensor& s)
//   {
//     return unet.forward_with_attention(x, t, s).attention;          // (L, B, R*R, 77)
//   };
//   anagram::AntiSegregation antiseg(probe, image_views, map_views, cond_states, concept_mask,
//                                    options, num_steps);
//   sampler.set_post_step_hook(std::ref(antiseg));
//
// The method sees the model only through the probe, so tests drive it with analytic dummies.
// Where tensors live: every tensor given to it and made by it is on the views' device.
#pragma once

#include <torch/types.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "anagram/text/t5_tokenizer.h"
#include "anagram/views/views.h"

namespace anagram {

// How the concept's tokens are looked up in the prompt's tokens.
enum class ConceptSearch {
  // As the published code (the default): the raw concept (the raw prompt's last word, split on
  // ' ') tokenised alone, searched in the raw prompt's tokens, case kept, while the T5 states
  // come from the lower-cased prompt. Capitals can change the token split ("a photo of a Fox"),
  // and the positions then point at other columns than the concept's.
  kPublished,
  // Both lower-cased and stripped like the prompt the states come from (--exact-concept-tokens).
  kExact,
};

// Positions (into the prompt's T5 ids) of the concept's tokens: the concept tokenised alone
// (no end token) found as a contiguous run inside the prompt's tokens (the first occurrence,
// as the published code takes). An empty concept means the prompt's last word. Throws
// anagram::Error(kInvalidArgument) when the run does not occur (e.g. the word is not in the
// prompt, or tokenises differently there).
std::vector<int64_t> find_concept_tokens(const T5Tokenizer& tokenizer, const std::string& prompt,
                                         const std::string& concept = "",
                                         ConceptSearch search = ConceptSearch::kPublished);

// The last whitespace-separated word of a prompt ("a photo of a dog" -> "dog").
std::string last_word(const std::string& prompt);

// maps: (N, R, R) non-negative concept maps. Returns the 0-d overlap loss (differentiable).
torch::Tensor overlap_loss(const torch::Tensor& maps, double target);

// attention: (L, N, Q, 77) cross-attention probabilities of N tasks (conditional entries);
// concept_mask: (N, 77) float. Sums each task's concept columns, undoes view k on its
// R x R maps (R = map_views' size; a view's sign applies, as in the published code) and sums
// over layers. Returns (N, R, R).
torch::Tensor aggregate_concept_maps(const torch::Tensor& attention,
                                     const torch::Tensor& concept_mask, const ViewStack& map_views);

// (N, 77) float mask from each task's concept token positions.
torch::Tensor concept_mask(const std::vector<std::vector<int64_t>>& positions, int64_t length);

// The published target overlap, 0.5 - 0.05 * (N - 1).
double default_overlap_target(int64_t num_tasks);

// The UNet's cross-attention probabilities for a batch: x (B, C, S, S), a DDPM timestep and
// (B, 77, D) text states -> (L, B, R*R, 77) float32, differentiable with respect to x.
using AttentionProbe = std::function<torch::Tensor(const torch::Tensor& x, int64_t timestep,
                                                   const torch::Tensor& text_states)>;

struct AntiSegOptions {
  int steps = -1;                // K: optimise after steps 0..K-1; -1: 26 of 30, scaled
  double learning_rate = 5.0;    // SGD step on x
  std::optional<double> target;  // overlap target; default 0.5 - 0.05 (N - 1)

  int resolved_steps(int num_steps) const;  // K for a schedule of num_steps
  nlohmann::json to_json() const;
};

class AntiSegregation {
 public:
  // image_views: the tasks' views at the image size; map_views: the same views at the
  // attention maps' query resolution. cond_states: (N, 77, D) prompt states;
  // concept_mask: (N, 77) float, 1 on each task's concept tokens.
  AntiSegregation(AttentionProbe probe, const ViewStack& image_views, const ViewStack& map_views,
                  torch::Tensor cond_states, torch::Tensor concept_mask, AntiSegOptions options,
                  int num_steps);

  // The sampler hook: for step_index < K, one SGD step on x at next_timestep; else x itself.
  torch::Tensor operator()(const torch::Tensor& x, int step_index, int64_t next_timestep);

  // The overlap loss of x's concept maps at a timestep, without changing anything (tests and
  // diagnostics). Returns {loss (0-d), maps (N, R, R)}.
  std::pair<torch::Tensor, torch::Tensor> evaluate(const torch::Tensor& x, int64_t timestep) const;

  struct StepRecord {
    int step_index;
    torch::Tensor loss;  // 0-d, on the device
    torch::Tensor maps;  // (N, R, R) before the update, on the device
  };
  const std::vector<StepRecord>& records() const { return records_; }
  int steps() const { return steps_; }
  double target() const { return target_; }

 private:
  AttentionProbe probe_;
  const ViewStack& image_views_;
  const ViewStack& map_views_;
  torch::Tensor cond_states_;
  torch::Tensor concept_mask_;
  double learning_rate_;
  double target_;
  int steps_;
  std::vector<StepRecord> records_;
};

}  // namespace anagram
