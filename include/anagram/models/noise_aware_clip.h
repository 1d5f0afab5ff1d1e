// anagram/models/noise_aware_clip.h: GLIDE's noise-aware CLIP, scoring how far each task has come.
//
// Noise vector balancing (docs/algorithm.md step 5) needs, per task k, the cosine between the
// CLIP embedding of the noisy view X_k at timestep t and that of prompt k. The text side is
// computed once per run; the image side once per step, on the device.
//
// Basic usage:
//   auto clip = anagram::NoiseAwareClip::load(manifest, device);
//   torch::Tensor text = clip.embed_texts({"a dog", "a cat"});          // (N, E)
//   torch::Tensor s = clip.scores(view_inputs, t, text, /*published=*/true);  // (N)
//
// Where tensors live: on the CLIP's device; pictures from elsewhere are refused (one line),
// not copied, so a device mistake cannot hide as a per-step copy.
#pragma once

#include <torch/script.h>

#include <memory>
#include <string>
#include <vector>

#include "anagram/models/bundle.h"
#include "anagram/text/clip_tokenizer.h"

namespace anagram {

class NoiseAwareClip {
 public:
  // Loads the bundle's `clip` entry (which must exist) and its BPE vocabulary.
  static NoiseAwareClip load(const Manifest& manifest, const c10::Device& device);

  // (N, E) float32 unit-norm embeddings of the prompts (GLIDE's tokenisation, 77 tokens).
  torch::Tensor embed_texts(const std::vector<std::string>& prompts) const;

  // images: (N, 3, S, S) float32 noisy pictures in [-1, 1], resized to the encoder's size if
  // S differs. Returns (N, E) float32 unit-norm embeddings at DDPM timestep t.
  torch::Tensor embed_images(const torch::Tensor& images, int64_t timestep) const;

  // s_k = cos(image_k, text_k): (N) float32 on the device, no host sync.
  // published_input: feed X/2 + 0.5 as the published code does (its encoder maps its input
  // with (x + 1) * 127.5 again, so the picture lands on [127.5, 255]); false feeds X itself.
  torch::Tensor scores(const torch::Tensor& view_inputs, int64_t timestep,
                       const torch::Tensor& text_embeddings, bool published_input) const;

 private:
  NoiseAwareClip(ClipTokenizer tokenizer, std::shared_ptr<torch::jit::Module> image_encoder,
                 std::shared_ptr<torch::jit::Module> text_encoder, c10::Device device,
                 int64_t image_size)
      : tokenizer_(std::move(tokenizer)),
        image_encoder_(std::move(image_encoder)),
        text_encoder_(std::move(text_encoder)),
        device_(device),
        image_size_(image_size) {}

  ClipTokenizer tokenizer_;
  std::shared_ptr<torch::jit::Module> image_encoder_;
  std::shared_ptr<torch::jit::Module> text_encoder_;
  c10::Device device_;
  int64_t image_size_;
};

}  // namespace anagram
