#include "anagram/pipeline/session.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>

#include "anagram/core/device.h"
#include "anagram/core/dtype.h"
#include "anagram/core/error.h"
#include "anagram/core/error_text.h"
#include "anagram/core/threads.h"
#include "anagram/diffusion/mtl_combiner.h"
#include "anagram/models/noise_aware_clip.h"
#include "anagram/models/open_clip_text_encoder.h"
#include "anagram/models/text_encoder.h"
#include "anagram/models/unet.h"
#include "anagram/models/vae_decoder.h"
#include "anagram/pipeline/embeddings_cache.h"
#include "anagram/pipeline/model_callbacks.h"
#include "anagram/pipeline/sample_metadata.h"
#include "core/json_fields.h"
#include "core/sha256.h"
#include "pipeline/sample_runner.h"

namespace anagram {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// The cache key's model part: the text encoder file's hash (from the manifest when it has
// one) and the dtype its states were computed in.
std::string embeddings_model_key(const Manifest& manifest, const std::string& encoder_file,
                                 c10::ScalarType dtype) {
  const auto it = manifest.files.find(encoder_file);
  const std::string sha256 = it != manifest.files.end()
                                 ? it->second.sha256
                                 : detail::sha256_of_file(manifest.path_of(encoder_file));
  return sha256 + "\n" + dtype_name(dtype);
}

}  // namespace

void SessionOptions::validate() const {
  if (bundle.empty()) throw Error(ErrorKind::kInvalidArgument, "bundle", "must name a folder");
  if (threads < 0 || threads > 1024) {
    throw Error(ErrorKind::kInvalidArgument, "threads",
                "must be in 0..1024 (0: LibTorch's default), got " + std::to_string(threads));
  }
  if (blas_threads < 0 || blas_threads > 1024) {
    throw Error(ErrorKind::kInvalidArgument, "blas_threads",
                "must be in 0..1024 (0: as threads), got " + std::to_string(blas_threads));
  }
}

void SessionOptions::apply_threads() const {
  set_cpu_threads(threads, blas_threads > 0 ? blas_threads : threads);
}

nlohmann::json SessionOptions::to_json() const {
  return {{"bundle", bundle},           {"device", device},   {"dtype", dtype},
          {"text_device", text_device}, {"threads", threads}, {"blas_threads", blas_threads}};
}

SessionParts SessionParts::for_plan(const GenerationPlan& plan) {
  SessionParts parts;
  parts.stages = plan.num_stages();
  parts.clip = plan.needs_clip();
  return parts;
}

// One text model's prompt states (the bundle's T5 encoder, or a stage's own), computed once
// per prompt and kept on the session's device.
struct TextModel {
  std::function<std::unique_ptr<PromptEncoder>(const Manifest&)> load;
  std::unique_ptr<PromptEncoder> encoder;  // null when released
  EmbeddingsCache cache;
  std::map<std::string, torch::Tensor> embeddings;  // prompt -> (L, D) on the device
  int64_t tokens = 0, hidden = 0;
};

struct Session::Impl {
  c10::Device text_device{c10::kCPU};
  std::shared_ptr<const T5Tokenizer> tokenizer;  // kept when the text encoder is released
  std::map<int, TextModel> text_models;          // by StagePlan::text_model (0: T5)
  std::vector<UNet> unets;                       // the opened stages', in cascade order
  std::map<int, VaeDecoder> decoders;            // the opened latent stages', by stage
  std::unique_ptr<NoiseAwareClip> clip;
  // generate() may run on several threads at once (batch workers): the text encoders and the
  // embeddings maps are shared state.
  mutable std::mutex text_mutex;

  torch::Tensor encode(int text_model, const std::vector<std::string>& prompts,
                       const Manifest& manifest, const c10::Device& device);
};

torch::Tensor Session::Impl::encode(int text_model, const std::vector<std::string>& prompts,
                                    const Manifest& manifest, const c10::Device& device) {
  const std::lock_guard<std::mutex> lock(text_mutex);
  TextModel& model = text_models.at(text_model);
  for (const auto& prompt : prompts) {
    if (model.embeddings.count(prompt)) continue;
    torch::Tensor states = model.cache.read(prompt, model.tokens, model.hidden);
    if (!states.defined()) {
      if (!model.encoder) model.encoder = model.load(manifest);
      // One prompt per call, as the published code encodes them: a prompt's states then do
      // not depend on which other prompts share its batch (kernels round differently for
      // other batch sizes), so a cached prompt and a fresh one give the same bytes.
      states = model.encoder->encode({prompt})[0];
      model.cache.write(prompt, states);
    }
    model.embeddings[prompt] = states.to(device);  // the one crossing of a prompt's states
  }
  std::vector<torch::Tensor> out;
  for (const auto& prompt : prompts) out.push_back(model.embeddings.at(prompt));
  return torch::stack(out);
}

Session::Session(std::unique_ptr<Impl> impl, Manifest manifest, SessionOptions options,
                 c10::Device device, c10::ScalarType dtype)
    : impl_(std::move(impl)),
      manifest_(std::move(manifest)),
      options_(std::move(options)),
      device_(device),
      dtype_(dtype) {}

Session::~Session() = default;

std::unique_ptr<Session> Session::open(const SessionOptions& options, const SessionParts& parts) {
  options.validate();
  return open(options, read_manifest(options.bundle), parts);
}

std::unique_ptr<Session> Session::open(const SessionOptions& options, Manifest manifest,
                                       const SessionParts& parts) {
  options.validate();
  options.apply_threads();
  const c10::Device device = parse_device(options.device);
  const c10::ScalarType dtype = resolve_dtype(options.dtype, manifest.dtype, device);
  auto impl = std::make_unique<Impl>();
  impl->text_device =
      options.text_device.empty() ? device : parse_device(options.text_device, "text_device");
  if (impl->text_device.is_cpu() && dtype == c10::ScalarType::Half) {
    throw Error(ErrorKind::kDevice, "text_device",
                "this bundle is float16, which LibTorch cannot run on the CPU");
  }

  const auto start = Clock::now();
  if (verify_bundle_files(manifest)) {
    spdlog::debug("bundle files match their SHA-256 in manifest.json");
  } else {
    spdlog::warn(
        "bundle '{}' has schema version 1: its files carry no hashes and are not checked "
        "(re-export it with scripts/export/export_if.py)",
        printable(manifest.name));
  }
  spdlog::info("loading bundle '{}' ({}) on {} in {}", printable(manifest.name),
               printable(manifest.dir.string()), device.str(), dtype_name(dtype));
  impl->tokenizer = std::make_shared<const T5Tokenizer>(load_t5_tokenizer(manifest));
  const c10::Device text_device = impl->text_device;
  TextModel& t5 = impl->text_models[0];
  t5.load = [tokenizer = impl->tokenizer, text_device,
             dtype](const Manifest& bundle) -> std::unique_ptr<PromptEncoder> {
    return std::make_unique<TextEncoder>(TextEncoder::load(bundle, tokenizer, text_device, dtype));
  };
  t5.tokens = manifest.tokenizer.max_length;
  t5.hidden = manifest.text_encoder.hidden_size;
  if (!options.embeddings_cache.empty()) {
    t5.cache = EmbeddingsCache(options.embeddings_cache,
                               embeddings_model_key(manifest, manifest.text_encoder.file, dtype));
  }
  t5.encoder = t5.load(manifest);
  const size_t stages = parts.stages > 0 ? std::min<size_t>(parts.stages, manifest.stages.size())
                                         : manifest.stages.size();
  for (size_t s = 0; s < stages; ++s) {
    const StageEntry& stage = manifest.stages[s];
    impl->unets.push_back(UNet::load(manifest, stage, device, dtype));
    if (stage.latent) {
      impl->decoders.emplace(stage.stage, VaeDecoder::load(manifest, *stage.latent, device));
    }
    if (stage.text) {
      TextModel& own = impl->text_models[stage.stage];
      const StageTextEntry text = *stage.text;
      own.load = [text, text_device,
                  dtype](const Manifest& bundle) -> std::unique_ptr<PromptEncoder> {
        return std::make_unique<OpenClipTextEncoder>(
            OpenClipTextEncoder::load(bundle, text, text_device, dtype));
      };
      own.tokens = text.max_length;
      own.hidden = text.hidden_size;
      if (!options.embeddings_cache.empty()) {
        own.cache = EmbeddingsCache(options.embeddings_cache,
                                    embeddings_model_key(manifest, text.encoder_file, dtype));
      }
      own.encoder = own.load(manifest);
    }
  }
  if (parts.clip && manifest.clip) {
    impl->clip = std::make_unique<NoiseAwareClip>(NoiseAwareClip::load(manifest, device));
  }
  SessionOptions recorded = options;
  // What metadata needs to reproduce the bytes: the counts in effect, not the request.
  const CpuThreads in_effect = cpu_threads();
  recorded.threads = in_effect.intra_op;
  recorded.blas_threads = in_effect.blas;
  std::unique_ptr<Session> session(
      new Session(std::move(impl), std::move(manifest), recorded, device, dtype));
  session->load_seconds_ = seconds_since(start);
  return session;
}

GenerationPlan Session::plan(const GenerateRequest& request) const {
  return plan_generation(request, manifest_, impl_->tokenizer.get());
}

void Session::release_text_encoder() {
  const std::lock_guard<std::mutex> lock(impl_->text_mutex);
  for (auto& [key, model] : impl_->text_models) model.encoder.reset();
}

bool Session::text_encoder_loaded() const {
  const std::lock_guard<std::mutex> lock(impl_->text_mutex);
  return impl_->text_models.at(0).encoder != nullptr;
}

torch::Tensor Session::encode(const std::vector<std::string>& prompts) {
  return impl_->encode(0, prompts, manifest_, device_);
}

Sample Session::generate(const GenerateRequest& request, const RunOptions& run) {
  return generate(plan(request), 0, run);
}

Sample Session::generate(const GenerationPlan& plan, int index, const RunOptions& run) {
  if (index < 0 || index >= plan.request.num_samples) {
    throw Error(ErrorKind::kInvalidArgument, "sample",
                "index " + std::to_string(index) + " is outside the request's " +
                    std::to_string(plan.request.num_samples) + " samples");
  }
  if (plan.needs_clip() && !impl_->clip) {
    throw Error(ErrorKind::kInvalidArgument, "balance",
                "this session was opened without its noise-aware CLIP");
  }
  if (plan.num_stages() > static_cast<int>(impl_->unets.size())) {
    throw Error(ErrorKind::kInvalidArgument, "stages",
                "this session was opened without the UNet of stage " +
                    std::to_string(impl_->unets.size() + 1));
  }
  // 1. Prompts, with each stage's text model (cached per session); the negative prompt is "".
  const auto encode_start = Clock::now();
  std::vector<std::string> prompts;
  for (const auto& task : plan.tasks) prompts.push_back(task.prompt);
  std::map<int, Conditioning> conditioning;  // per text model: stages I and II share T5's
  std::vector<detail::StageModels> stages;
  for (const StagePlan& stage : plan.stages) {
    detail::StageModels models;
    models.unet = &impl_->unets.at(static_cast<size_t>(stage.stage - 1));
    auto known = conditioning.find(stage.text_model);
    if (known == conditioning.end()) {
      known =
          conditioning
              .emplace(stage.text_model,
                       Conditioning{impl_->encode(stage.text_model, {""}, manifest_, device_),
                                    impl_->encode(stage.text_model, prompts, manifest_, device_)})
              .first;
    }
    models.conditioning = known->second;
    if (stage.latent) models.decoder = &impl_->decoders.at(stage.stage);
    stages.push_back(std::move(models));
  }
  if (options_.release_text_encoder) release_text_encoder();
  const double encode_seconds = seconds_since(encode_start);

  // 2. The method, over the session's models.
  std::unique_ptr<NoiseCombiner> combiner;
  if (plan.request.method == Method::kBaseline) {
    combiner = std::make_unique<MeanCombiner>(plan.reduction);
  } else {
    MtlOptions mtl = plan.request.mtl;
    mtl.balance = plan.balance;
    TaskScorer scorer;
    if (plan.balance) scorer = clip_task_scorer(*impl_->clip, prompts, !mtl.exact_clip_input);
    combiner = std::make_unique<MultiTaskCombiner>(mtl, std::move(scorer), plan.reduction);
  }
  // 3. The sample, every stage, back on the host.
  detail::SampleRunner runner(plan, std::move(stages), *combiner, device_, dtype_, run);
  Sample sample = runner.run(index);
  sample.encode_seconds = encode_seconds;
  if (plan.balance && clip_scores_clamped(sample, plan.request.mtl.min_score)) {
    spdlog::warn(
        "some noise-aware CLIP scores were <= {} and were clamped before balancing (see "
        "clip_scores in metadata.json)",
        plan.request.mtl.min_score);
  }
  sample.metadata = sample_metadata(plan, sample,
                                    {options_.to_json(), &manifest_, device_, dtype_, load_seconds_,
                                     run.command_line, run.rerun});
  return sample;
}

RecordedRun read_recorded_run(const fs::path& metadata_file) {
  std::error_code ec;
  const uintmax_t size = fs::file_size(metadata_file, ec);
  if (ec) {
    throw Error(ErrorKind::kIo, "from_metadata",
                "cannot read '" + metadata_file.string() + "': " + ec.message());
  }
  if (size > (64u << 20)) {
    throw Error(ErrorKind::kInvalidArgument, "from_metadata",
                "'" + metadata_file.string() + "' is too large for a metadata.json");
  }
  std::ifstream in(metadata_file, std::ios::binary);
  std::string bytes(static_cast<size_t>(size), '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(size));
  const nlohmann::json j =
      detail::parse_json_bounded(bytes, ErrorKind::kInvalidArgument, metadata_file.string());
  const detail::JsonFields root(j, "", ErrorKind::kInvalidArgument);
  if (!root.has("request") || !root.has("session")) {
    throw Error(ErrorKind::kInvalidArgument, "from_metadata",
                "'" + metadata_file.string() + "' is not an anagram metadata.json");
  }
  RecordedRun run;
  try {
    run.request = GenerateRequest::from_json(root.raw("request"));
  } catch (const Error& e) {
    throw Error(e.kind(), "request." + e.field(), e.detail());
  }
  const detail::JsonFields session = root.object("session");
  run.session.bundle = session.string("bundle", 4096);
  run.session.device = session.string("device", 64);
  run.session.dtype = session.string("dtype", 64);
  run.session.text_device = session.string("text_device", 64, "");
  run.session.threads = static_cast<int>(session.integer("threads", 0, 1024, 0));
  run.session.blas_threads = static_cast<int>(session.integer("blas_threads", 0, 1024, 0));
  if (root.has("bundle")) {
    run.manifest_sha256 = root.object("bundle").string("manifest_sha256", 64, "");
  }
  return run;
}

}  // namespace anagram
