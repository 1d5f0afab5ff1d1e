#include "anagram/models/clip_scorer.h"

#include <torch/nn/functional/upsampling.h>

#include <cmath>

#include "anagram/core/error.h"
#include "core/json_fields.h"
#include "core/sha256.h"
#include "models/model_folder.h"
#include "models/script_module.h"

namespace anagram {
namespace {

namespace fs = std::filesystem;
using detail::JsonFields;

// Generous for every published CLIP (ViT-L/14@336 embeds 768, sees 336 pixels), small enough
// that a hostile scorer.json cannot ask for absurd allocations.
constexpr uintmax_t kMaxScorerJsonBytes = 1 << 20;
constexpr int64_t kMaxImageSize = 1024;
constexpr int64_t kMaxEmbedDim = 16384;
constexpr int64_t kMaxContext = 512;

[[noreturn]] void scorer_error(const fs::path& dir, const std::string& what) {
  throw Error(ErrorKind::kBundle, "scorer '" + printable(dir.string()) + "': " + what);
}

std::array<double, 3> read_triple(const JsonFields& j, const std::string& key, double min,
                                  double max) {
  const nlohmann::json& raw = j.raw(key);
  if (!raw.is_array() || raw.size() != 3) j.fail(key, "must be an array of 3 numbers");
  std::array<double, 3> out{};
  for (size_t i = 0; i < 3; ++i) {
    if (!raw[i].is_number()) j.fail(key, "must be an array of 3 numbers");
    out[i] = raw[i].get<double>();
    if (!std::isfinite(out[i]) || out[i] < min || out[i] > max) {
      j.fail(key, "entries must lie in [" + std::to_string(min) + ", " + std::to_string(max) + "]");
    }
  }
  return out;
}

}  // namespace

ScorerManifest read_scorer_manifest(const fs::path& dir) {
  ScorerManifest m;
  m.dir = dir;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) scorer_error(dir, "not a folder");
  const fs::path json_path = dir / "scorer.json";
  if (!fs::is_regular_file(json_path, ec)) scorer_error(dir, "has no scorer.json");
  const std::string bytes = detail::read_manifest_bytes(
      json_path, kMaxScorerJsonBytes, [&](const std::string& what) { scorer_error(dir, what); });
  m.sha256 = detail::sha256_hex(bytes);
  try {
    const nlohmann::json doc = detail::parse_json_bounded(bytes, ErrorKind::kBundle, "scorer.json");
    const JsonFields j(doc, "", ErrorKind::kBundle);
    if (j.string("format", 64, "") != "anagram-scorer")
      j.fail("format", "must be \"anagram-scorer\"");
    if (j.integer("schema_version", 0, 1'000'000) != 1) {
      j.fail("schema_version", "unknown version (this program reads version 1)");
    }
    m.name = j.string("name", 200);
    m.description = j.string("description", 4000, "");
    m.source = j.string("source", 1000, "");
    m.image_encoder = detail::folder_file(dir, "scorer folder", j, "image_encoder");
    m.text_encoder = detail::folder_file(dir, "scorer folder", j, "text_encoder");
    m.vocab = detail::folder_file(dir, "scorer folder", j, "vocab");
    m.image_size = j.integer("image_size", 8, kMaxImageSize);
    m.image_mean = read_triple(j, "image_mean", 0.0, 1.0);
    m.image_std = read_triple(j, "image_std", 1e-3, 10.0);
    m.context_length = static_cast<int>(j.integer("context_length", 2, kMaxContext, 77));
    m.embed_dim = j.integer("embed_dim", 1, kMaxEmbedDim);
    m.logit_scale = j.number("logit_scale", 1e-3, 1e4);
    const JsonFields files = j.object("files");
    for (const std::string& file : {m.image_encoder, m.text_encoder, m.vocab}) {
      m.files[file] = detail::read_file_entry(files, file);
    }
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::kBundle) throw;
    scorer_error(dir,
                 e.field().empty() ? e.detail() : "scorer.json '" + e.field() + "': " + e.detail());
  }
  return m;
}

ClipScorer::ClipScorer(ScorerManifest manifest, ClipTokenizer tokenizer,
                       std::shared_ptr<torch::jit::Module> image_encoder,
                       std::shared_ptr<torch::jit::Module> text_encoder, c10::Device device)
    : manifest_(std::move(manifest)),
      tokenizer_(std::move(tokenizer)),
      image_encoder_(std::move(image_encoder)),
      text_encoder_(std::move(text_encoder)),
      device_(device) {}

ClipScorer ClipScorer::load(const fs::path& dir, const c10::Device& device) {
  ScorerManifest m = read_scorer_manifest(dir);
  for (const auto& [file, expected] : m.files) {
    const std::string problem = detail::file_mismatch(dir, file, expected);
    if (!problem.empty()) scorer_error(dir, problem);
  }
  ClipTokenizer tokenizer = ClipTokenizer::load((dir / m.vocab).string(), m.context_length);
  const detail::ModuleFile image_file{dir.string(), m.image_encoder, "the image encoder", "scorer"};
  const detail::ModuleFile text_file{dir.string(), m.text_encoder, "the text encoder", "scorer"};
  // Exported in float32 (token ids and masks are integer buffers, so no cast here).
  auto image = detail::load_script_module(image_file, device, std::nullopt);
  auto text = detail::load_script_module(text_file, device, std::nullopt);
  const int64_t dim = m.embed_dim;
  const int64_t size = m.image_size;
  ClipScorer scorer(std::move(m), std::move(tokenizer), std::move(image), std::move(text), device);
  const torch::Tensor t = detail::run_probe(text_file, [&] { return scorer.embed_texts({"a"}); });
  detail::expect_shape(text_file, t, {1, dim});
  const torch::Tensor i = detail::run_probe(image_file, [&] {
    return scorer.embed_images(torch::full({1, size, size, 3}, 128, torch::kByte));
  });
  detail::expect_shape(image_file, i, {1, dim});
  return scorer;
}

torch::Tensor ClipScorer::preprocess(const torch::Tensor& images) const {
  if (images.dim() != 4 || images.size(3) != 3 || images.scalar_type() != torch::kByte) {
    throw Error(ErrorKind::kInvalidArgument, "score: pictures must be (B, H, W, 3) uint8");
  }
  namespace F = torch::nn::functional;
  const int64_t s = manifest_.image_size;
  torch::Tensor x = images.to(device_).permute({0, 3, 1, 2}).to(torch::kFloat) / 255.0;
  x = F::interpolate(x, F::InterpolateFuncOptions()
                            .size(std::vector<int64_t>{s, s})
                            .mode(torch::kBicubic)
                            .align_corners(false)
                            .antialias(true))
          .clamp(0, 1);
  const auto options = torch::TensorOptions().dtype(torch::kFloat).device(device_);
  const torch::Tensor mean =
      torch::tensor(std::vector<double>(manifest_.image_mean.begin(), manifest_.image_mean.end()),
                    options)
          .view({1, 3, 1, 1});
  const torch::Tensor std =
      torch::tensor(std::vector<double>(manifest_.image_std.begin(), manifest_.image_std.end()),
                    options)
          .view({1, 3, 1, 1});
  return (x - mean) / std;
}

torch::Tensor ClipScorer::embed_images(const torch::Tensor& images) const {
  torch::NoGradGuard no_grad;
  const detail::ModelWarnings warnings;
  const torch::Tensor e =
      image_encoder_->forward({preprocess(images)}).toTensor().to(torch::kFloat);
  return e / e.norm(2, -1, true);
}

torch::Tensor ClipScorer::embed_texts(const std::vector<std::string>& prompts) const {
  const auto n = static_cast<int64_t>(prompts.size());
  torch::Tensor tokens = torch::empty({n, tokenizer_.context_length()}, torch::kLong);
  for (int64_t k = 0; k < n; ++k) {
    const auto encoding = tokenizer_.encode(prompts[static_cast<size_t>(k)]);
    std::copy(encoding.tokens.begin(), encoding.tokens.end(), tokens[k].data_ptr<int64_t>());
  }
  torch::NoGradGuard no_grad;
  const detail::ModelWarnings warnings;
  const torch::Tensor e = text_encoder_->forward({tokens.to(device_)}).toTensor().to(torch::kFloat);
  return e / e.norm(2, -1, true);
}

torch::Tensor ClipScorer::similarity(const torch::Tensor& images,
                                     const std::vector<std::string>& prompts) const {
  return embed_images(images).matmul(embed_texts(prompts).t()).cpu();
}

}  // namespace anagram
