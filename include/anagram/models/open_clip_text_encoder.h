// anagram/models/open_clip_text_encoder.h: stage III's text encoder (SD 2's OpenCLIP ViT-H text
// tower), prompts -> text states the way StableDiffusionUpscalePipeline computes them.
//
// Basic usage:
//   const anagram::StageEntry& upscaler = manifest.stage(3);
//   anagram::OpenClipTextEncoder encoder =
//       anagram::OpenClipTextEncoder::load(manifest, *upscaler.text, device, dtype);
//   torch::Tensor states = encoder.encode({"a dog", ""});  // (2, 77, 1024) float32
//
// Tokens are CLIP BPE (text/clip_tokenizer.h): 49406, the first 75 BPE ids, 49407, then 0 up
// to 77, OpenCLIP's padding (SD 1.x pads with 49407); the pipeline passes no attention mask
// and takes last_hidden_state (docs/stage3.md). Each prompt is encoded on its own, as the
// session's T5 prompts are, so its states do not depend on the others in a batch.
//
// Where tensors live: the encoder and its output on `device`; ids are made on the CPU and
// moved there in encode().
#pragma once

#include <torch/script.h>

#include <memory>
#include <string>
#include <vector>

#include "anagram/models/bundle.h"
#include "anagram/models/text_encoder.h"
#include "anagram/text/clip_tokenizer.h"

namespace anagram {

class OpenClipTextEncoder final : public PromptEncoder {
 public:
  // Loads the tokenizer and the encoder file (checked as every bundle module: docs/bundle.md)
  // and probes the output shape. Throws Error(kBundle).
  static OpenClipTextEncoder load(const Manifest& manifest, const StageTextEntry& entry,
                                  const c10::Device& device, c10::ScalarType dtype);

  // (P, max_length, hidden_size) float32; "" is the negative prompt. Warns when a prompt is
  // truncated.
  torch::Tensor encode(const std::vector<std::string>& prompts) const override;
  const ClipTokenizer& tokenizer() const { return tokenizer_; }

 private:
  OpenClipTextEncoder(ClipTokenizer tokenizer, std::shared_ptr<torch::jit::Module> module,
                      c10::Device device)
      : tokenizer_(std::move(tokenizer)), module_(std::move(module)), device_(device) {}

  ClipTokenizer tokenizer_;
  std::shared_ptr<torch::jit::Module> module_;
  c10::Device device_;
};

}  // namespace anagram
