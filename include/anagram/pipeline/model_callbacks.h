// anagram/pipeline/model_callbacks.h: the loaded models as the method's callbacks.
//
// The method (diffusion/) sees models only through small function types, so that it can be
// tested on analytic dummies; this is where the real models plug in:
//   anagram::MultiViewSampler sampler(unet, ...);  // a UNet is already a Denoiser
//   anagram::AntiSegregation antiseg(anagram::attention_probe(unet), ...);
//   anagram::MultiTaskCombiner combiner(options, anagram::clip_task_scorer(clip, prompts, true));
//
// Where tensors live: on the models' device, which must be the device of the sampler's views.
#pragma once

#include <string>
#include <vector>

#include "anagram/diffusion/antiseg.h"
#include "anagram/diffusion/mtl_combiner.h"
#include "anagram/models/noise_aware_clip.h"
#include "anagram/models/unet.h"

namespace anagram {

// The UNet's cross-attention probabilities, as anti-segregation asks for them. The UNet must
// outlive the probe.
AttentionProbe attention_probe(const UNet& unet);

// Prompt k's noise-aware CLIP text embedding against the noisy picture through view k
// (published_input: MtlOptions::exact_clip_input off). The CLIP must outlive the scorer.
TaskScorer clip_task_scorer(const NoiseAwareClip& clip, const std::vector<std::string>& prompts,
                            bool published_input);

}  // namespace anagram
