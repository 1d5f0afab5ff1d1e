#include "anagram/bundle.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "anagram/error.h"
#include "sha256.h"

namespace anagram {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

[[noreturn]] void bundle_error(const Manifest& m, const std::string& what) {
  throw Error(ErrorKind::kBundle, "bundle '" + m.dir.string() + "': " + what);
}

// Typed access to a required key; `where` is the dotted path used in error messages.
template <typename T>
T required(const Manifest& m, const json& object, const std::string& key,
           const std::string& where) {
  if (!object.is_object() || !object.contains(key)) {
    bundle_error(m, "manifest.json is missing '" + where + key + "'");
  }
  try {
    return object.at(key).get<T>();
  } catch (const json::exception&) {
    bundle_error(m, "manifest.json key '" + where + key + "' has the wrong type (" +
                        object.at(key).dump() + ")");
  }
}

template <typename T>
T optional(const json& object, const std::string& key, T fallback) {
  if (!object.is_object() || !object.contains(key) || object.at(key).is_null()) return fallback;
  return object.at(key).get<T>();
}

int64_t positive(const Manifest& m, int64_t value, const std::string& key) {
  if (value <= 0) bundle_error(m, "manifest.json key '" + key + "' must be positive");
  return value;
}

// A file named by the manifest must be a plain relative path that stays inside the bundle.
void check_file(const Manifest& m, const std::string& file, const std::string& key) {
  const fs::path relative(file);
  if (file.empty() || relative.is_absolute()) {
    bundle_error(m,
                 "'" + key + "' must be a path relative to the bundle folder, got '" + file + "'");
  }
  std::error_code ec;
  const fs::path root = fs::weakly_canonical(m.dir, ec);
  const fs::path target = fs::weakly_canonical(m.dir / relative, ec);
  const auto mismatch = std::mismatch(root.begin(), root.end(), target.begin(), target.end());
  if (ec || mismatch.first != root.end()) {
    bundle_error(m, "'" + key + "' = '" + file + "' leaves the bundle folder");
  }
  if (!fs::is_regular_file(target, ec)) {
    bundle_error(m, "file '" + file + "' named by '" + key + "' does not exist");
  }
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

}  // namespace

c10::ScalarType parse_dtype(const std::string& name) {
  if (name == "float32" || name == "fp32") return c10::ScalarType::Float;
  if (name == "float16" || name == "fp16") return c10::ScalarType::Half;
  if (name == "bfloat16" || name == "bf16") return c10::ScalarType::BFloat16;
  throw Error(ErrorKind::kInvalidArgument,
              "unknown dtype '" + name + "' (expected float32, float16 or bfloat16)");
}

std::string dtype_name(c10::ScalarType dtype) {
  switch (dtype) {
    case c10::ScalarType::Float:
      return "float32";
    case c10::ScalarType::Half:
      return "float16";
    case c10::ScalarType::BFloat16:
      return "bfloat16";
    default:
      return c10::toString(dtype);
  }
}

Manifest read_manifest(const fs::path& bundle_dir) {
  Manifest m;
  m.dir = bundle_dir;
  std::error_code ec;
  if (!fs::is_directory(bundle_dir, ec)) bundle_error(m, "not a folder");
  const fs::path manifest_path = bundle_dir / "manifest.json";
  if (!fs::is_regular_file(manifest_path, ec)) bundle_error(m, "has no manifest.json");

  const std::string bytes = read_file(manifest_path);
  m.sha256 = detail::sha256_hex(bytes);
  try {
    m.raw = json::parse(bytes);
  } catch (const json::parse_error& e) {
    bundle_error(m, std::string("manifest.json is not valid JSON: ") + e.what());
  }
  const json& j = m.raw;
  if (!j.is_object()) bundle_error(m, "manifest.json must hold a JSON object");
  if (optional<std::string>(j, "format", "") != "anagram-bundle") {
    bundle_error(m, "manifest.json 'format' must be \"anagram-bundle\"");
  }
  m.schema_version = required<int>(m, j, "schema_version", "");
  if (m.schema_version != kBundleSchemaVersion) {
    bundle_error(m, "unknown schema_version " + std::to_string(m.schema_version) +
                        " (this program reads version " + std::to_string(kBundleSchemaVersion) +
                        "; re-export the bundle with this release's scripts/export_if.py)");
  }
  m.name = required<std::string>(m, j, "name", "");
  m.description = optional<std::string>(j, "description", "");
  m.stage = required<int>(m, j, "stage", "");
  if (m.stage != 1) bundle_error(m, "stage " + std::to_string(m.stage) + " is not supported yet");
  try {
    m.dtype = parse_dtype(required<std::string>(m, j, "dtype", ""));
  } catch (const Error& e) {
    bundle_error(m, std::string("manifest.json 'dtype': ") + e.what());
  }

  const json& image = j.contains("image") ? j.at("image") : json();
  m.image_size = positive(m, required<int64_t>(m, image, "size", "image."), "image.size");
  m.image_channels =
      positive(m, required<int64_t>(m, image, "channels", "image."), "image.channels");

  const json& unet = j.contains("unet") ? j.at("unet") : json();
  m.unet.file = required<std::string>(m, unet, "file", "unet.");
  m.unet.in_channels =
      positive(m, required<int64_t>(m, unet, "in_channels", "unet."), "unet.in_channels");
  m.unet.out_channels =
      positive(m, required<int64_t>(m, unet, "out_channels", "unet."), "unet.out_channels");
  if (m.unet.in_channels != m.image_channels || m.unet.out_channels != 2 * m.image_channels) {
    bundle_error(m, "unet in/out channels (" + std::to_string(m.unet.in_channels) + ", " +
                        std::to_string(m.unet.out_channels) +
                        ") do not fit an IF stage I model (image channels, 2x for variance)");
  }
  m.unet.config = optional<json>(unet, "config", json::object());
  const json& attention = unet.contains("attention") ? unet.at("attention") : json();
  m.unet.attention.query_resolution =
      positive(m, required<int64_t>(m, attention, "query_resolution", "unet.attention."),
               "unet.attention.query_resolution");
  m.unet.attention.num_layers = required<int64_t>(m, attention, "num_layers", "unet.attention.");
  m.unet.attention.text_tokens =
      positive(m, required<int64_t>(m, attention, "text_tokens", "unet.attention."),
               "unet.attention.text_tokens");
  m.unet.attention.layers =
      optional<std::vector<std::string>>(attention, "layers", std::vector<std::string>{});

  const json& text = j.contains("text_encoder") ? j.at("text_encoder") : json();
  m.text_encoder.file = required<std::string>(m, text, "file", "text_encoder.");
  m.text_encoder.hidden_size = positive(
      m, required<int64_t>(m, text, "hidden_size", "text_encoder."), "text_encoder.hidden_size");

  const json& tokenizer = j.contains("tokenizer") ? j.at("tokenizer") : json();
  m.tokenizer.file = required<std::string>(m, tokenizer, "file", "tokenizer.");
  m.tokenizer.max_length = optional<int>(tokenizer, "max_length", 77);
  m.tokenizer.pad_id = optional<int64_t>(tokenizer, "pad_id", 0);
  m.tokenizer.eos_id = optional<int64_t>(tokenizer, "eos_id", 1);
  if (m.tokenizer.max_length != m.unet.attention.text_tokens) {
    bundle_error(m, "tokenizer.max_length and unet.attention.text_tokens differ");
  }

  if (!j.contains("scheduler") || !j.at("scheduler").is_object()) {
    bundle_error(m, "manifest.json is missing the 'scheduler' object");
  }
  m.scheduler = j.at("scheduler");

  if (j.contains("clip") && !j.at("clip").is_null()) {
    const json& clip = j.at("clip");
    ClipEntry c;
    c.image_encoder = required<std::string>(m, clip, "image_encoder", "clip.");
    c.text_encoder = required<std::string>(m, clip, "text_encoder", "clip.");
    c.bpe_vocab = required<std::string>(m, clip, "bpe_vocab", "clip.");
    c.text_context = optional<int>(clip, "text_context", 77);
    c.image_size = positive(m, optional<int64_t>(clip, "image_size", 64), "clip.image_size");
    c.embedding_dim =
        positive(m, required<int64_t>(m, clip, "embedding_dim", "clip."), "clip.embedding_dim");
    try {
      c.dtype = parse_dtype(optional<std::string>(clip, "dtype", "float32"));
    } catch (const Error& e) {
      bundle_error(m, std::string("manifest.json 'clip.dtype': ") + e.what());
    }
    check_file(m, c.image_encoder, "clip.image_encoder");
    check_file(m, c.text_encoder, "clip.text_encoder");
    check_file(m, c.bpe_vocab, "clip.bpe_vocab");
    m.clip = c;
  }

  check_file(m, m.unet.file, "unet.file");
  check_file(m, m.text_encoder.file, "text_encoder.file");
  check_file(m, m.tokenizer.file, "tokenizer.file");
  return m;
}

}  // namespace anagram
