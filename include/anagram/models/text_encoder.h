// anagram/models/text_encoder.h: prompts -> T5 text states, the way the diffusers IF pipeline does
// it.
//
// Basic usage:
//   auto tokenizer = std::make_shared<const
//   anagram::T5Tokenizer>(anagram::load_t5_tokenizer(manifest)); anagram::TextEncoder encoder =
//   anagram::TextEncoder::load(manifest, tokenizer, device, dtype); torch::Tensor states =
//   encoder.encode({"a dog", "a cat"});  // (2, 77, D) float32
//
// Where tensors live: the encoder and its output on `device`; token ids are made on the CPU
// and moved there in encode().
#pragma once

#include <torch/script.h>

#include <memory>
#include <string>
#include <vector>

#include "anagram/models/bundle.h"
#include "anagram/text/t5_tokenizer.h"

namespace anagram {

// The bundle's SentencePiece tokenizer with the manifest's length and special ids.
T5Tokenizer load_t5_tokenizer(const Manifest& manifest);

// Prompts -> (P, L, D) float32 text states on the encoder's device: the T5 encoder of IF's stages
// or stage III's own (open_clip_text_encoder.h). A session keeps one per text model.
class PromptEncoder {
 public:
  virtual ~PromptEncoder() = default;
  virtual torch::Tensor encode(const std::vector<std::string>& prompts) const = 0;
};

class TextEncoder final : public PromptEncoder {
 public:
  // Loads BUNDLE/text_encoder.pt (the tokenizer is shared: a session keeps it when it frees
  // the encoder) and probes the encoder's output shape.
  static TextEncoder load(const Manifest& manifest, std::shared_ptr<const T5Tokenizer> tokenizer,
                          const c10::Device& device, c10::ScalarType dtype);
  // The same with a tokenizer of its own.
  static TextEncoder load(const Manifest& manifest, const c10::Device& device,
                          c10::ScalarType dtype);

  // Each prompt is preprocessed like IFPipeline._text_preprocessing (lower-case, strip),
  // tokenised (eos, padding to 77, truncation with a warning) and encoded with its attention
  // mask. Returns (P, 77, D) float32 on the encoder's device. "" is the negative prompt.
  torch::Tensor encode(const std::vector<std::string>& prompts) const override;

  const T5Tokenizer& tokenizer() const { return *tokenizer_; }

 private:
  TextEncoder(std::shared_ptr<const T5Tokenizer> tokenizer,
              std::shared_ptr<torch::jit::Module> module, c10::Device device)
      : tokenizer_(std::move(tokenizer)), module_(std::move(module)), device_(device) {}

  std::shared_ptr<const T5Tokenizer> tokenizer_;
  std::shared_ptr<torch::jit::Module> module_;
  c10::Device device_;
};

}  // namespace anagram
