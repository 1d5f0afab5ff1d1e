// anagram/models/bundle.h: a model bundle on disk (docs/bundle.md) and its validated manifest.
//
// Basic usage:
//   anagram::Manifest manifest = anagram::read_manifest("models/tiny-if");  // throws on problems
//   const anagram::StageEntry& base = manifest.stage(1);
//   std::string unet_path = manifest.path_of(base.unet.file);
//
// read_manifest() checks the schema version and every key (type and range: sizes have upper
// bounds, so a hostile manifest cannot ask for terabytes) and every file the manifest names
// (it must exist and stay inside the bundle folder). It reads manifest.json only: the file
// hashes are checked by verify_bundle_files(), the TorchScript code when a module is loaded.
// Schema version 1 bundles (stage I only, no file hashes) still load.
#pragma once

#include <c10/core/ScalarType.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "anagram/core/error_text.h"
#include "anagram/models/scheduler_config.h"

namespace anagram {

inline constexpr int kBundleSchemaVersion = 2;

// The bundle used when none is named: $ANAGRAM_BUNDLE, else the bundled default model.
std::string default_bundle_path();

struct AttentionLayout {
  int64_t query_resolution = 0;  // captured layers have a query grid of this size squared
  int64_t num_layers = 0;        // L in forward_with_attention's (L, B, Q, T) maps
  int64_t text_tokens = 0;       // T: text keys come first in IF's added-KV attention
  std::vector<std::string> layers;
};

struct UNetEntry {
  std::string file;
  int64_t in_channels = 0;
  int64_t out_channels = 0;   // 2 * image channels for learned variance
  bool class_labels = false;  // forward takes a 4th input: (B) int64 class labels (noise level)
  std::optional<AttentionLayout> attention;  // stage I: what forward_with_attention returns
  nlohmann::json config;                     // the diffusers UNet2DConditionModel config
};

// One stage of IF's cascade: 1 is the 64x64 base model, 2 the 64 -> 256 super-resolution.
struct StageEntry {
  int stage = 1;
  int64_t image_size = 0;      // x is (1, image_channels, image_size, image_size)
  int64_t image_channels = 0;  // channels of x (the UNet may take more: stage II adds lowres)
  UNetEntry unet;
  DDPMSchedulerConfig scheduler;
  // Stage II: the low-res augmentation schedule; its presence makes the stage a
  // super-resolution stage (pipeline/plan.h).
  std::optional<DDPMSchedulerConfig> noising_scheduler;
  int64_t default_noise_level = 0;  // stage II: the published noise level (50); else 0
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

// What the manifest promises about one file: its SHA-256 and size, checked before loading.
struct FileEntry {
  std::string sha256;  // lower-case hex
  uint64_t bytes = 0;
};

struct Manifest {
  std::filesystem::path dir;  // the bundle folder
  int schema_version = 0;
  std::string name;
  std::string description;
  c10::ScalarType dtype = c10::ScalarType::Float;
  std::vector<StageEntry> stages;  // stage 1 first, then (optionally) stage 2
  TextEncoderEntry text_encoder;
  TokenizerEntry tokenizer;
  std::optional<ClipEntry> clip;           // absent: balancing falls back to equal weights
  std::map<std::string, FileEntry> files;  // empty for schema version 1 bundles
  nlohmann::json raw;                      // the whole manifest, for `anagram info`
  std::string sha256;                      // of manifest.json's bytes, recorded in metadata

  bool has_stage(int stage) const;
  // Throws Error(kBundle) when the bundle has no such stage.
  const StageEntry& stage(int stage) const;
  std::string path_of(const std::string& file) const { return (dir / file).string(); }
  // Every file the manifest names, in a stable order.
  std::vector<std::string> named_files() const;
};

// Reads BUNDLE_DIR/manifest.json and validates it and the files it names.
// Throws anagram::Error(kBundle) with a one-line message naming the key or file at fault.
Manifest read_manifest(const std::filesystem::path& bundle_dir);
// The same from manifest.json's bytes (the files it names are still checked in bundle_dir).
Manifest parse_manifest(const std::string& manifest_bytes, const std::filesystem::path& bundle_dir);

// Checks every named file against the manifest's SHA-256 and size (schema 2 bundles must list
// all of them). Throws Error(kBundle) naming the file. Returns false (after checking nothing)
// for a schema 1 bundle, which has no hashes.
bool verify_bundle_files(const Manifest& manifest);

}  // namespace anagram
