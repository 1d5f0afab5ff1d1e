// anagram/pipeline/embeddings_cache.h: prompt embeddings kept on disk across runs, so a later
// run skips the text encoder (T5-XXL: 9.5 GB and seconds per prompt).
//
// Basic usage:
//   anagram::EmbeddingsCache cache("cache", text_encoder_sha256 + "\n" + "float16");
//   torch::Tensor states = cache.read("a dog", 77, 4096);  // undefined on a miss
//   if (!states.defined()) cache.write("a dog", encoder.encode({"a dog"})[0]);
//
// One file per (model key, prompt): OUT/<sha256 of both>.emb holding a magic, the shape and the
// float32 values. The folder is shared and its files are untrusted: a file of the wrong size,
// magic or shape, or with values that are not finite, is a miss, never an error. Writes go
// through write_file_atomic (a fresh temporary file renamed into place).
//
// Where tensors live: read() returns (rows, cols) float32 on the CPU; write() takes one on any
// device and copies it to the host.
#pragma once

#include <torch/types.h>

#include <filesystem>
#include <string>

namespace anagram {

class EmbeddingsCache {
 public:
  EmbeddingsCache() = default;  // disabled
  // `dir` "" disables the cache. `model_key` names the encoder and dtype the states come from.
  EmbeddingsCache(std::filesystem::path dir, std::string model_key);

  bool enabled() const { return !dir_.empty(); }
  std::filesystem::path file_of(const std::string& prompt) const;
  // The cached (rows, cols) states of `prompt`, or an undefined tensor.
  torch::Tensor read(const std::string& prompt, int64_t rows, int64_t cols) const;
  // Stores `states` (rows, cols); a failure is logged as a warning (the run goes on).
  void write(const std::string& prompt, const torch::Tensor& states) const;

 private:
  std::filesystem::path dir_;
  std::string model_key_;
};

}  // namespace anagram
