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

// A latent stage (stage III, the x4 upscaler): x is a latent grid that the bundle's decoder
// turns into the stage's pictures.
struct LatentEntry {
  int64_t size = 0;  // latents are (1, channels, size, size)
  int64_t channels = 0;
  double scaling_factor = 1;  // the decoder divides by it itself
  // forward(latents (B, channels, s, s)) -> (B, 3, upscale s, upscale s), always float32.
  std::string decoder_file;
  int64_t upscale = 4;
  // Tiled decoding as diffusers' AutoencoderKL.enable_tiling(): tiles of `tile` latent cells
  // (its config's sample_size / upscale) overlapping by `tile_overlap` of a tile.
  int64_t tile = 0;
  double tile_overlap = 0.25;
};

// A stage with a text encoder of its own (stage III: SD 2's OpenCLIP), fed CLIP BPE tokens
// (start, BPE ids, end, then pad_id up to max_length).
struct StageTextEntry {
  std::string encoder_file;  // forward(ids (B, max_length) int64) -> (B, max_length, hidden)
  int64_t hidden_size = 0;
  std::string bpe_vocab;  // CLIP's gzip BPE merges file
  int max_length = 77;
  int64_t pad_id = 0;
};

// One stage of the cascade: 1 is IF's 64x64 base model, 2 its 64 -> 256 super-resolution, 3 the
// x4 upscaler (256 -> 1024, latent). What differs between stages is data here.
struct StageEntry {
  int stage = 1;
  int64_t image_size = 0;      // the stage's pictures are (1, image_channels, S, S)
  int64_t image_channels = 0;  // channels of x (the UNet may take more: stage II adds lowres)
  UNetEntry unet;
  SchedulerConfig scheduler;  // DDPM (IF) or DDIM (stage III)
  // Super-resolution stages: the low-res augmentation schedule; its presence makes the stage a
  // super-resolution stage (pipeline/plan.h).
  std::optional<DDPMSchedulerConfig> noising_scheduler;
  int64_t default_noise_level = 0;        // the published noise level (stage II 50, III 20); else 0
  int64_t max_noise_level = 0;            // the largest noise level the UNet's class labels take
  bool augmentation_noise_first = false;  // the x4 upscaler draws it before the latents
  std::optional<LatentEntry> latent;      // stage III: x is latents, decoded to pictures
  std::optional<StageTextEntry> text;     // unset: the bundle's T5 encoder
  int default_steps = 0;                  // 0: the request's; stage III: 75
  double default_guidance = 0;            // 0: the request's; stage III: 9

  int64_t sample_size() const { return latent ? latent->size : image_size; }  // x's side
  int64_t sample_channels() const { return latent ? latent->channels : image_channels; }
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
  // Stage 1 first, then (optionally) stage 2 and stage 3 (the manifest's "stage3" object).
  std::vector<StageEntry> stages;
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
