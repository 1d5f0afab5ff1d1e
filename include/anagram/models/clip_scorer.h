// anagram/models/clip_scorer.h: a standard (clean-image) CLIP for scoring finished anagrams.
//
// Not used while sampling: `anagram score` embeds each view's picture and each prompt with it
// (anagram/eval/metrics.h turns the similarities into the papers' scores). A scorer is a folder
// with scorer.json, two TorchScript encoders and CLIP's BPE vocabulary, written by
// scripts/export/export_clip_scorer.py from a transformers CLIP checkpoint (docs/scorer.md); like a
// bundle it is untrusted: paths stay inside the folder, sizes are bounded, file hashes and
// operators are checked before anything runs.
//
//   auto scorer = anagram::ClipScorer::load("models/tiny-clip-scorer", torch::kCPU);
//   torch::Tensor s = scorer.similarity(images_u8, {"a dog", "a cat"});   // (B, 2) cosines
#pragma once

#include <torch/script.h>

#include <array>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "anagram/models/bundle.h"
#include "anagram/text/clip_tokenizer.h"

namespace anagram {

struct ScorerManifest {
  std::filesystem::path dir;
  std::string sha256;  // of scorer.json
  std::string name;
  std::string description;
  std::string source;  // what it was exported from, e.g. "openai/clip-vit-large-patch14"
  std::string image_encoder;
  std::string text_encoder;
  std::string vocab;
  int64_t image_size = 224;
  std::array<double, 3> image_mean{};
  std::array<double, 3> image_std{};
  int context_length = 77;
  int64_t embed_dim = 0;
  double logit_scale = 100.0;  // exp of CLIP's learned logit scale: 1 / temperature
  std::map<std::string, FileEntry> files;
};

// Reads and checks <dir>/scorer.json (not the files' hashes). Throws Error(kBundle).
ScorerManifest read_scorer_manifest(const std::filesystem::path& dir);

class ClipScorer {
 public:
  // Checks the files' hashes, loads both encoders (operators checked) and probes them.
  static ClipScorer load(const std::filesystem::path& dir, const c10::Device& device);

  const ScorerManifest& manifest() const { return manifest_; }

  // images: (B, H, W, 3) uint8 RGB -> (B, 3, S, S) float32 on the device: /255, bicubic resize
  // with antialiasing to S = image_size, clamp to [0, 1], (x - mean) / std.
  torch::Tensor preprocess(const torch::Tensor& images) const;
  // (B, D) unit-norm image embeddings of (B, H, W, 3) uint8 pictures.
  torch::Tensor embed_images(const torch::Tensor& images) const;
  // (P, D) unit-norm text embeddings (CLIP tokens: start, BPE, end, zero padding).
  torch::Tensor embed_texts(const std::vector<std::string>& prompts) const;
  // (B, P) float32 cosine similarities on the CPU.
  torch::Tensor similarity(const torch::Tensor& images,
                           const std::vector<std::string>& prompts) const;

 private:
  ClipScorer(ScorerManifest manifest, ClipTokenizer tokenizer,
             std::shared_ptr<torch::jit::Module> image_encoder,
             std::shared_ptr<torch::jit::Module> text_encoder, c10::Device device);

  ScorerManifest manifest_;
  ClipTokenizer tokenizer_;
  std::shared_ptr<torch::jit::Module> image_encoder_;
  std::shared_ptr<torch::jit::Module> text_encoder_;
  c10::Device device_;
};

}  // namespace anagram
