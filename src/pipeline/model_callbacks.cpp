#include "anagram/pipeline/model_callbacks.h"

namespace anagram {

AttentionProbe attention_probe(const UNet& unet) {
  return [&unet](const torch::Tensor& x, int64_t timestep, const torch::Tensor& text_states) {
    return unet.forward_with_attention(x, timestep, text_states).attention;
  };
}

TaskScorer clip_task_scorer(const NoiseAwareClip& clip, const std::vector<std::string>& prompts,
                            bool published_input) {
  const torch::Tensor text = clip.embed_texts(prompts);  // (N, E) on the CLIP's device
  return [&clip, text, published_input](const torch::Tensor& view_inputs, int64_t timestep) {
    return clip.scores(view_inputs, timestep, text, published_input);
  };
}

}  // namespace anagram
