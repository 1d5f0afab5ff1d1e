#include "anagram/diffusion/antiseg.h"

#include <torch/csrc/autograd/autograd.h>

#include <algorithm>
#include <cmath>

#include "anagram/core/error.h"
#include "anagram/core/error_text.h"

namespace anagram {

std::string last_word(const std::string& prompt) {
  const auto end = prompt.find_last_not_of(" \t\n\r");
  if (end == std::string::npos) return "";
  const auto start = prompt.find_last_of(" \t\n\r", end);
  return prompt.substr(start == std::string::npos ? 0 : start + 1,
                       end - (start == std::string::npos ? 0 : start + 1) + 1);
}

std::vector<int64_t> find_concept_tokens(const T5Tokenizer& tokenizer, const std::string& prompt,
                                         const std::string& concept, ConceptSearch search) {
  std::string text, word;
  if (search == ConceptSearch::kPublished) {
    // Ref: Anagram-MTL samplers_mtl.py: prompt.split(' ')[-1], tokenizer(concept).input_ids[:-1]
    // searched in tokenizer(prompt).input_ids, both without the pipeline's lower()/strip().
    text = prompt;
    word = concept.empty()
               ? prompt.substr(prompt.rfind(' ') == std::string::npos ? 0 : prompt.rfind(' ') + 1)
               : concept;
  } else {
    text = T5Tokenizer::preprocess(prompt);
    word = T5Tokenizer::preprocess(concept.empty() ? last_word(text) : concept);
  }
  const std::vector<int64_t> ids = tokenizer.encode(text).ids;
  const std::vector<int64_t> needle = tokenizer.encode_plain(word);
  // The first occurrence, as the published code searches.
  if (!needle.empty() && ids.size() >= needle.size()) {
    const auto found = std::search(ids.begin(), ids.end(), needle.begin(), needle.end());
    if (found != ids.end()) {
      std::vector<int64_t> positions(needle.size());
      const auto start = static_cast<int64_t>(found - ids.begin());
      for (size_t i = 0; i < needle.size(); ++i) positions[i] = start + static_cast<int64_t>(i);
      return positions;
    }
  }
  throw Error(ErrorKind::kInvalidArgument, "concepts",
              "concept '" + quote_for_error(word) + "' is not found among the tokens of prompt '" +
                  quote_for_error(text) + "' (name a word or phrase of the prompt as its concept)");
}

double default_overlap_target(int64_t num_tasks) {
  return 0.5 - 0.05 * static_cast<double>(num_tasks - 1);
}

torch::Tensor overlap_loss(const torch::Tensor& maps, double target) {
  const int64_t n = maps.size(0);
  const torch::Tensor flat = maps.reshape({n, -1});
  std::vector<torch::Tensor> terms;
  for (int64_t k = 0; k < n; ++k) {
    for (int64_t l = k + 1; l < n; ++l) {
      const torch::Tensor overlap =
          torch::minimum(flat[k], flat[l]).sum() / (flat[k] + flat[l]).sum();
      terms.push_back((target - overlap).abs());
    }
  }
  if (terms.empty()) return torch::zeros({}, maps.options());
  return torch::stack(terms).mean();
}

int AntiSegOptions::resolved_steps(int num_steps) const {
  if (steps >= 0) return std::min(steps, num_steps);
  // The published schedule optimises after the first 26 of 30 steps.
  return static_cast<int>(std::lround(26.0 * num_steps / 30.0));
}

nlohmann::json AntiSegOptions::to_json() const {
  nlohmann::json j = {{"steps", steps}, {"learning_rate", learning_rate}};
  j["target"] = target ? nlohmann::json(*target) : nlohmann::json(nullptr);
  return j;
}

AntiSegregation::AntiSegregation(AttentionProbe probe, const ViewStack& image_views,
                                 const ViewStack& map_views, torch::Tensor cond_states,
                                 torch::Tensor concept_mask, AntiSegOptions options, int num_steps)
    : probe_(std::move(probe)),
      image_views_(image_views),
      map_views_(map_views),
      cond_states_(std::move(cond_states)),
      concept_mask_(std::move(concept_mask)),
      learning_rate_(options.learning_rate),
      target_(options.target.value_or(default_overlap_target(image_views.size()))),
      steps_(options.resolved_steps(num_steps)) {}

torch::Tensor aggregate_concept_maps(const torch::Tensor& attention,
                                     const torch::Tensor& concept_mask,
                                     const ViewStack& map_views) {
  const int64_t layers = attention.size(0), n = attention.size(1);
  const int64_t side = map_views.height();
  // (L, N, Q, T) -> concept columns summed -> (N, L, R, R)
  const torch::Tensor concept =
      (attention * concept_mask.view({1, n, 1, -1})).sum(-1).permute({1, 0, 2});
  const torch::Tensor grids = concept.reshape({n, layers, side, side});
  return map_views.invert_each(grids).sum(1);
}

torch::Tensor concept_mask(const std::vector<std::vector<int64_t>>& positions, int64_t length) {
  auto mask = torch::zeros({static_cast<int64_t>(positions.size()), length});
  for (size_t k = 0; k < positions.size(); ++k) {
    for (int64_t p : positions[k]) mask[static_cast<int64_t>(k)][p] = 1.0;
  }
  return mask;
}

std::pair<torch::Tensor, torch::Tensor> AntiSegregation::evaluate(const torch::Tensor& x,
                                                                  int64_t timestep) const {
  const torch::Tensor attention = probe_(image_views_.apply_each(x), timestep, cond_states_);
  const torch::Tensor maps = aggregate_concept_maps(attention, concept_mask_, map_views_);
  return {overlap_loss(maps, target_), maps};
}

torch::Tensor AntiSegregation::operator()(const torch::Tensor& x, int step_index,
                                          int64_t next_timestep) {
  if (step_index >= steps_) return x;
  torch::AutoGradMode enable_grad(true);
  const torch::Tensor leaf = x.detach().requires_grad_(true);
  // Only the conditional half: the unconditional entries do not reach the loss.
  auto [loss, maps] = evaluate(leaf, next_timestep);
  const torch::Tensor grad = torch::autograd::grad({loss}, {leaf})[0];
  records_.push_back({step_index, loss.detach(), maps.detach()});
  return (leaf - learning_rate_ * grad).detach();
}

}  // namespace anagram
