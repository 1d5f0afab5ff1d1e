// anagram/bundle.h: a model bundle on disk (docs/bundle.md) and its validated manifest.
//
// Basic usage:
//   anagram::Manifest manifest = anagram::read_manifest("models/tiny-if");  // throws on problems
//   std::string unet_path = manifest.path_of(manifest.unet.file);
//
// read_manifest() checks the schema version, every required key and every file the manifest
// names (it must exist and stay inside the bundle folder) before anything is loaded.
#pragma once

#include <c10/core/ScalarType.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace anagram {

inline constexpr int kBundleSchemaVersion = 1;

struct AttentionLayout {
  int64_t query_resolution = 0;  // captured layers have a query grid of this size squared
  int64_t num_layers = 0;        // L in forward_with_attention's (L, B, Q, T) maps
  int64_t text_tokens = 0;       // T: text keys come first in IF's added-KV attention
  std::vector<std::string> layers;
};

struct UNetEntry {
  std::string file;
  int64_t in_channels = 0;
  int64_t out_channels = 0;  // 2 * in_channels for learned variance
  AttentionLayout attention;
  nlohmann::json config;  // the diffusers UNet2DConditionModel config, verbatim
};

struct TextEncoderEntry {
  std::string file;
  int64_t hidden_size = 0;
};

struct TokenizerEntry {
  std::string file;
  int max_length = 77;
  int64_t pad_id = 0;
  int64_t eos_id = 1;
};

// The optional noise-aware CLIP (GLIDE's) used by noise vector balancing.
struct ClipEntry {
  std::string image_encoder;  // forward(image (B,3,S,S) [-1,1], t (B) int64) -> (B,E) unit norm
  std::string text_encoder;   // forward(tokens (B,L) int64, lengths (B) int64) -> (B,E) unit norm
  std::string bpe_vocab;      // CLIP's gzip BPE merges file
  int text_context = 77;
  int64_t image_size = 64;
  int64_t embedding_dim = 0;
  c10::ScalarType dtype = c10::ScalarType::Float;
};

struct Manifest {
  std::filesystem::path dir;  // the bundle folder
  int schema_version = 0;
  std::string name;
  std::string description;
  int stage = 1;
  c10::ScalarType dtype = c10::ScalarType::Float;
  int64_t image_size = 0;
  int64_t image_channels = 0;
  UNetEntry unet;
  TextEncoderEntry text_encoder;
  TokenizerEntry tokenizer;
  std::optional<ClipEntry> clip;  // absent: balancing falls back to equal weights
  nlohmann::json scheduler;       // diffusers DDPMScheduler config keys (see ddpm_scheduler.h)
  nlohmann::json raw;             // the whole manifest, for `anagram info` and metadata
  std::string sha256;             // of manifest.json's bytes, recorded in every output's metadata

  std::string path_of(const std::string& file) const { return (dir / file).string(); }
};

// Reads BUNDLE_DIR/manifest.json and validates it and the files it names.
// Throws anagram::Error(kBundle) with a one-line message naming the key or file at fault.
Manifest read_manifest(const std::filesystem::path& bundle_dir);

// "float32" | "float16" | "bfloat16" -> ScalarType; throws kInvalidArgument otherwise.
c10::ScalarType parse_dtype(const std::string& name);
std::string dtype_name(c10::ScalarType dtype);

}  // namespace anagram
