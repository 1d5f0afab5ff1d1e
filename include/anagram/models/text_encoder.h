// anagram/models/text_encoder.h: prompts -> T5 text states, the way the diffusers IF pipeline does
// it.
//
// Basic usage:
//   anagram::TextEncoder encoder = anagram::TextEncoder::load(manifest, device, dtype);
//   torch::Tensor states = encoder.encode({"a dog", "a cat"});  // (2, 77, D) float32
#pragma once

#include <torch/script.h>

#include <memory>
#include <string>
#include <vector>

#include "anagram/models/bundle.h"
#include "anagram/text/t5_tokenizer.h"

namespace anagram {

class TextEncoder {
 public:
  // Loads the tokenizer and BUNDLE/text_encoder.pt, and probes the encoder's output shape.
  static TextEncoder load(const Manifest& manifest, const c10::Device& device,
                          c10::ScalarType dtype);

  // Each prompt is preprocessed like IFPipeline._text_preprocessing (lower-case, strip),
  // tokenised (eos, padding to 77, truncation with a warning) and encoded with its attention
  // mask. Returns (P, 77, D) float32 on the encoder's device. "" is the negative prompt.
  torch::Tensor encode(const std::vector<std::string>& prompts) const;

  const T5Tokenizer& tokenizer() const { return tokenizer_; }

 private:
  TextEncoder(T5Tokenizer tokenizer, std::shared_ptr<torch::jit::Module> module, c10::Device device)
      : tokenizer_(std::move(tokenizer)), module_(std::move(module)), device_(device) {}

  T5Tokenizer tokenizer_;
  std::shared_ptr<torch::jit::Module> module_;
  c10::Device device_;
};

}  // namespace anagram
