#include "anagram/models/bundle.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <set>

#include "anagram/core/dtype.h"
#include "anagram/core/error.h"
#include "core/json_fields.h"
#include "core/sha256.h"
#include "models/model_folder.h"

namespace anagram {
namespace {

namespace fs = std::filesystem;
using detail::JsonFields;
using nlohmann::json;

// Bounds on what a manifest may ask for. Generous for every DeepFloyd IF model, small enough
// that a hostile manifest cannot make the program allocate absurd amounts.
constexpr uintmax_t kMaxManifestBytes = 4 << 20;
constexpr int64_t kMaxImageSize = 1024;
constexpr int64_t kMaxChannels = 4;
constexpr int64_t kMaxUpscaledSize = 4096;  // stage III's pictures
constexpr int64_t kMaxLatentChannels = 16;
constexpr int64_t kMaxHiddenSize = 16384;
constexpr int64_t kMaxTokens = 512;
constexpr int64_t kMaxTokenId = 10'000'000;
constexpr int64_t kMaxAttentionLayers = 64;
constexpr size_t kMaxPath = 255;
constexpr size_t kMaxName = 200;
constexpr size_t kMaxDescription = 4000;

[[noreturn]] void bundle_error(const Manifest& m, const std::string& what) {
  throw Error(ErrorKind::kBundle, "bundle '" + printable(m.dir.string()) + "': " + what);
}

std::string file_key(const JsonFields& where, const Manifest& m, const std::string& key) {
  return detail::folder_file(m.dir, "bundle folder", where, key, kMaxPath);
}

c10::ScalarType read_dtype(const JsonFields& where, const std::string& key,
                           const std::string& fallback) {
  const std::string name = where.string(key, 16, fallback);
  try {
    return parse_dtype(name);
  } catch (const Error& e) {
    where.fail(key, e.detail());
  }
}

AttentionLayout read_attention(const JsonFields& a, int64_t image_size) {
  AttentionLayout layout;
  layout.query_resolution = a.integer("query_resolution", 1, image_size);
  layout.num_layers = a.integer("num_layers", 0, kMaxAttentionLayers);
  layout.text_tokens = a.integer("text_tokens", 1, kMaxTokens);
  layout.layers = a.strings("layers", kMaxAttentionLayers, kMaxName);
  return layout;
}

// A scheduler config object (DDPM unless said); its errors name the key ("stages[0].scheduler':
// ...").
template <typename Config = DDPMSchedulerConfig>
Config read_scheduler(const JsonFields& where, const std::string& key) {
  where.object(key);  // must be an object
  try {
    return Config::from_json(where.raw(key));
  } catch (const Error& e) {
    where.fail(key, e.detail());
  }
}

// "image", "unet", "scheduler" (and for stage II "noising_scheduler") of one stage; in schema 1
// these are top-level keys.
StageEntry read_stage(const Manifest& m, const JsonFields& s, int stage) {
  StageEntry e;
  e.stage = stage;
  const JsonFields image = s.object("image");
  e.image_size = image.integer("size", 8, kMaxImageSize);
  e.image_channels = image.integer("channels", 1, kMaxChannels);

  const JsonFields unet = s.object("unet");
  e.unet.file = file_key(unet, m, "file");
  e.unet.class_labels = stage == 2;
  const int64_t expected_in = stage == 1 ? e.image_channels : 2 * e.image_channels;
  e.unet.in_channels = unet.integer("in_channels", expected_in, expected_in);
  e.unet.out_channels = unet.integer("out_channels", 2 * e.image_channels, 2 * e.image_channels);
  if (stage == 2) {
    const std::string labels = unet.string("class_labels", 32);
    if (labels != "noise_level") unet.fail("class_labels", "must be \"noise_level\"");
  }
  if (const auto attention = unet.optional_object("attention")) {
    e.unet.attention = read_attention(*attention, e.image_size);
  } else if (stage == 1) {
    unet.fail("attention", "is missing (stage I must expose its cross-attention layers)");
  }
  e.unet.config = unet.has("config") ? unet.raw("config") : json::object();

  e.scheduler = read_scheduler(s, "scheduler");
  if (stage == 2) {
    e.noising_scheduler = read_scheduler(s, "noising_scheduler");
    e.max_noise_level = e.noising_scheduler->num_train_timesteps - 1;
    e.default_noise_level = s.integer("default_noise_level", 0, e.max_noise_level, 50);
  }
  return e;
}

// The "stage3" object export_sd_upscaler.py writes (docs/stage3.md): the x4 upscaler, a latent
// super-resolution stage with its own text encoder, on the previous stage's pictures.
StageEntry read_stage3(const Manifest& m, const JsonFields& s, const StageEntry& previous) {
  StageEntry e;
  e.stage = s.integer("stage", 3, 3);
  const JsonFields image = s.object("image");
  e.image_size = image.integer("size", 8, kMaxUpscaledSize);
  e.image_channels = image.integer("channels", 3, 3);

  LatentEntry latent;
  const JsonFields lowres = s.object("lowres");
  const int64_t lowres_channels = lowres.integer("channels", 3, 3);
  lowres.integer("size", previous.image_size, previous.image_size);  // the previous stage's
  const JsonFields l = s.object("latent");
  latent.size = l.integer("size", previous.image_size, previous.image_size);
  latent.channels = l.integer("channels", 1, kMaxLatentChannels);
  latent.scaling_factor = l.number("scaling_factor", 1e-6, 1e6);

  const JsonFields vae = s.object("vae_decoder");
  latent.decoder_file = file_key(vae, m, "file");
  latent.upscale = vae.integer("upscale", 1, 64);
  if (latent.upscale * latent.size != e.image_size) {
    vae.fail("upscale",
             "times latent.size must be image.size (" + std::to_string(e.image_size) + ")");
  }
  if (!vae.boolean("divides_by_scaling_factor")) {
    vae.fail("divides_by_scaling_factor", "must be true (the decoder takes the UNet's latents)");
  }
  if (vae.string("dtype", 16, "float32") != "float32") {
    vae.fail("dtype", "must be float32 (a float16 VAE decoder overflows)");
  }
  // diffusers' tile_latent_min_size: the VAE config's sample_size in latent cells.
  const JsonFields vae_config = vae.object("config");
  latent.tile = std::max<int64_t>(
      1, vae_config.integer("sample_size", 8, kMaxUpscaledSize, 512) / latent.upscale);
  e.latent = latent;

  const JsonFields unet = s.object("unet");
  e.unet.file = file_key(unet, m, "file");
  const int64_t in = latent.channels + lowres_channels;
  e.unet.in_channels = unet.integer("in_channels", in, in);
  e.unet.out_channels = unet.integer("out_channels", latent.channels, latent.channels);
  if (unet.string("class_labels", 32) != "noise_level") {
    unet.fail("class_labels", "must be \"noise_level\"");
  }
  e.unet.class_labels = true;
  e.unet.config = unet.has("config") ? unet.raw("config") : json::object();

  StageTextEntry text;
  const JsonFields encoder = s.object("text_encoder");
  text.encoder_file = file_key(encoder, m, "file");
  text.hidden_size = encoder.integer("hidden_size", 1, kMaxHiddenSize);
  const JsonFields tokenizer = s.object("tokenizer");
  text.bpe_vocab = file_key(tokenizer, m, "bpe_vocab");
  text.max_length = static_cast<int>(tokenizer.integer("max_length", 2, kMaxTokens, 77));
  text.pad_id = tokenizer.integer("pad_id", 0, 0, 0);  // OpenCLIP's; the tokenizer pads with 0
  tokenizer.integer("start_token", 49406, 49406, 49406);
  tokenizer.integer("end_token", 49407, 49407, 49407);
  e.text = text;

  e.scheduler = read_scheduler<DDIMSchedulerConfig>(s, "scheduler");
  e.noising_scheduler = read_scheduler(s, "low_res_scheduler");
  e.max_noise_level =
      s.integer("max_noise_level", 0, e.noising_scheduler->num_train_timesteps - 1, 350);
  e.default_noise_level = s.integer("default_noise_level", 0, e.max_noise_level, 20);
  e.augmentation_noise_first = true;
  e.default_steps = static_cast<int>(s.integer("default_steps", 1, 1000, 75));
  e.default_guidance = s.number("default_guidance", 0, 100, 9.0);
  return e;
}

// The noise-aware CLIP's entry.
ClipEntry read_clip(const JsonFields& clip, const Manifest& m) {
  ClipEntry c;
  c.image_encoder = file_key(clip, m, "image_encoder");
  c.text_encoder = file_key(clip, m, "text_encoder");
  c.bpe_vocab = file_key(clip, m, "bpe_vocab");
  c.text_context = static_cast<int>(clip.integer("text_context", 2, kMaxTokens, 77));
  c.image_size = clip.integer("image_size", 8, kMaxImageSize, 64);
  c.embedding_dim = clip.integer("embedding_dim", 1, kMaxHiddenSize);
  c.dtype = read_dtype(clip, "dtype", "float32");
  return c;
}

// "text_encoder" and "tokenizer", whose length must be the attention maps' text tokens.
void read_text_parts(const JsonFields& j, Manifest& m) {
  const JsonFields text = j.object("text_encoder");
  m.text_encoder.file = file_key(text, m, "file");
  m.text_encoder.hidden_size = text.integer("hidden_size", 1, kMaxHiddenSize);

  const JsonFields tokenizer = j.object("tokenizer");
  m.tokenizer.file = file_key(tokenizer, m, "file");
  m.tokenizer.max_length = static_cast<int>(tokenizer.integer("max_length", 2, kMaxTokens, 77));
  m.tokenizer.pad_id = tokenizer.integer("pad_id", 0, kMaxTokenId, 0);
  m.tokenizer.eos_id = tokenizer.integer("eos_id", 0, kMaxTokenId, 1);
  for (const auto& s : m.stages) {
    if (s.unet.attention && s.unet.attention->text_tokens != m.tokenizer.max_length) {
      tokenizer.fail("max_length", "differs from the UNet's attention text_tokens (" +
                                       std::to_string(s.unet.attention->text_tokens) + ")");
    }
  }
}

}  // namespace

std::string default_bundle_path() {
  if (const char* env = std::getenv("ANAGRAM_BUNDLE"); env && *env) return env;
#ifdef ANAGRAM_DEFAULT_BUNDLE_DIR
  return ANAGRAM_DEFAULT_BUNDLE_DIR;
#else
  return "models/demo-glyphs";
#endif
}

bool Manifest::has_stage(int number) const {
  return std::any_of(stages.begin(), stages.end(),
                     [&](const StageEntry& s) { return s.stage == number; });
}

const StageEntry& Manifest::stage(int number) const {
  for (const auto& s : stages) {
    if (s.stage == number) return s;
  }
  throw Error(ErrorKind::kBundle, "stages",
              "bundle '" + printable(name) + "' has no stage " + std::to_string(number));
}

std::vector<std::string> Manifest::named_files() const {
  std::vector<std::string> files = {text_encoder.file, tokenizer.file};
  for (const auto& s : stages) {
    files.push_back(s.unet.file);
    if (s.latent) files.push_back(s.latent->decoder_file);
    if (s.text) files.insert(files.end(), {s.text->encoder_file, s.text->bpe_vocab});
  }
  if (clip) {
    files.insert(files.end(), {clip->image_encoder, clip->text_encoder, clip->bpe_vocab});
  }
  return files;
}

Manifest read_manifest(const fs::path& bundle_dir) {
  Manifest m;
  m.dir = bundle_dir;
  std::error_code ec;
  if (!fs::is_directory(bundle_dir, ec)) bundle_error(m, "not a folder");
  const fs::path manifest_path = bundle_dir / "manifest.json";
  if (!fs::is_regular_file(manifest_path, ec)) bundle_error(m, "has no manifest.json");

  return parse_manifest(
      detail::read_manifest_bytes(manifest_path, kMaxManifestBytes,
                                  [&](const std::string& what) { bundle_error(m, what); }),
      bundle_dir);
}

Manifest parse_manifest(const std::string& bytes, const fs::path& bundle_dir) {
  Manifest m;
  m.dir = bundle_dir;
  if (bytes.size() > kMaxManifestBytes) {
    bundle_error(m, "manifest.json is " + std::to_string(bytes.size()) + " bytes; at most " +
                        std::to_string(kMaxManifestBytes) + " are accepted");
  }
  m.sha256 = detail::sha256_hex(bytes);
  try {
    m.raw = detail::parse_json_bounded(bytes, ErrorKind::kBundle, "manifest.json");
    const JsonFields j(m.raw, "", ErrorKind::kBundle);
    if (j.string("format", 64, "") != "anagram-bundle") {
      j.fail("format", "must be \"anagram-bundle\"");
    }
    m.schema_version = static_cast<int>(j.integer("schema_version", 0, 1'000'000));
    if (m.schema_version != 1 && m.schema_version != kBundleSchemaVersion) {
      j.fail("schema_version", "unknown version " + std::to_string(m.schema_version) +
                                   " (this program reads versions 1 and " +
                                   std::to_string(kBundleSchemaVersion) +
                                   "; re-export the bundle with this release's "
                                   "scripts/export/export_if.py)");
    }
    m.name = j.string("name", kMaxName);
    m.description = j.string("description", kMaxDescription, "");
    m.dtype = read_dtype(j, "dtype", "");

    if (m.schema_version == 1) {
      if (j.integer("stage", 1, 1'000'000) != 1) {
        j.fail("stage", "stage " + std::to_string(j.integer("stage", 1, 1'000'000)) +
                            " bundles are not supported");
      }
      m.stages.push_back(read_stage(m, j, 1));
    } else {
      const auto stages = j.objects("stages", 2);
      for (size_t i = 0; i < stages.size(); ++i) {
        const int number = static_cast<int>(i) + 1;
        stages[i].integer("stage", number, number);  // stage 1 first, then stage 2
        m.stages.push_back(read_stage(m, stages[i], number));
      }
    }

    if (const auto stage3 = j.optional_object("stage3")) {
      if (m.stages.size() != 2) {
        j.fail("stage3", "needs stages I and II (it upscales stage II's pictures)");
      }
      m.stages.push_back(read_stage3(m, *stage3, m.stages.back()));
    }

    read_text_parts(j, m);

    if (const auto clip = j.optional_object("clip")) m.clip = read_clip(*clip, m);

    if (m.schema_version >= 2) {
      const JsonFields files = j.object("files");
      for (const auto& file : m.named_files()) {
        m.files[file] = detail::read_file_entry(files, file);
      }
    }
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::kBundle) throw;
    bundle_error(
        m, e.field().empty() ? e.detail() : "manifest.json '" + e.field() + "': " + e.detail());
  }
  return m;
}

bool verify_bundle_files(const Manifest& m) {
  if (m.schema_version < 2) return false;
  std::set<std::string> done;
  for (const auto& file : m.named_files()) {
    if (!done.insert(file).second) continue;
    const std::string problem = detail::file_mismatch(m.dir, file, m.files.at(file));
    if (!problem.empty()) bundle_error(m, problem);
  }
  return true;
}

}  // namespace anagram
