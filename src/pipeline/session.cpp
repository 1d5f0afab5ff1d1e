#include "anagram/pipeline/session.h"

#include <ATen/Parallel.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <torch/cuda.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <mutex>

#include "anagram/core/device.h"
#include "anagram/core/dtype.h"
#include "anagram/core/error.h"
#include "anagram/core/error_text.h"
#include "anagram/core/threads.h"
#include "anagram/diffusion/antiseg.h"
#include "anagram/diffusion/combiner.h"
#include "anagram/diffusion/ddpm_scheduler.h"
#include "anagram/diffusion/mtl_combiner.h"
#include "anagram/diffusion/noise_source.h"
#include "anagram/diffusion/sampler.h"
#include "anagram/io/image_io.h"
#include "anagram/io/metadata.h"
#include "anagram/io/output.h"
#include "core/json_fields.h"
#include "core/sha256.h"
#include "io/sample_writer.h"

#ifdef ANAGRAM_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace anagram {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

void synchronize(const c10::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index());
}

void reset_peak_memory(const c10::Device& device) {
#ifdef ANAGRAM_WITH_CUDA
  if (device.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(device.index());
#else
  (void)device;
#endif
}

// CUDA: the caching allocator's peak of allocated bytes since reset_peak_memory(); the CPU: the
// process's peak resident set (it only grows).
double peak_memory_mib(const c10::Device& device) {
#ifdef ANAGRAM_WITH_CUDA
  if (device.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index());
    return static_cast<double>(stats.allocated_bytes[0].peak) / (1 << 20);  // [0]: all pools
  }
#endif
  (void)device;
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // KiB on Linux
}

// (R, K) tensor -> [[...] x R] (or a flat list when K == 1), with one device->host copy.
nlohmann::json rows_to_json(const torch::Tensor& table) {
  const auto host = table.detach().to(torch::kCPU, torch::kDouble).contiguous();
  const auto rows = host.size(0), cols = host.size(1);
  const double* data = host.data_ptr<double>();
  nlohmann::json out = nlohmann::json::array();
  for (int64_t r = 0; r < rows; ++r) {
    if (cols == 1) {
      out.push_back(data[r]);
    } else {
      out.push_back(std::vector<double>(data + r * cols, data + (r + 1) * cols));
    }
  }
  return out;
}

// The per-step records of one stage of one sample (they stay on the device until the end).
struct StageRecords {
  std::vector<torch::Tensor> weights, scales, scores, maps;
  double seconds = 0;

  nlohmann::json to_json() const {
    nlohmann::json j = {{"weights", rows_to_json(torch::stack(weights))},
                        {"scales", rows_to_json(torch::stack(scales).unsqueeze(1))}};
    if (!scores.empty()) j["clip_scores"] = rows_to_json(torch::stack(scores));
    return j;
  }
};

// Prompt embeddings on disk: a magic, the shape and the float32 values. The file is the
// program's own, but it is still read as untrusted: a size that does not match is ignored.
constexpr char kEmbeddingMagic[8] = {'A', 'N', 'A', 'G', 'E', 'M', 'B', '1'};

torch::Tensor read_embedding(const fs::path& path, int64_t rows, int64_t cols) {
  std::error_code ec;
  const auto expected = sizeof kEmbeddingMagic + 2 * sizeof(int64_t) +
                        static_cast<uintmax_t>(rows * cols) * sizeof(float);
  if (!fs::is_regular_file(path, ec) || fs::file_size(path, ec) != expected) return {};
  std::ifstream in(path, std::ios::binary);
  char magic[8];
  int64_t shape[2];
  in.read(magic, sizeof magic);
  in.read(reinterpret_cast<char*>(shape), sizeof shape);
  if (!in || std::memcmp(magic, kEmbeddingMagic, sizeof magic) != 0 || shape[0] != rows ||
      shape[1] != cols) {
    return {};
  }
  torch::Tensor values = torch::empty({rows, cols}, torch::kFloat);
  in.read(reinterpret_cast<char*>(values.data_ptr<float>()),
          static_cast<std::streamsize>(rows * cols * sizeof(float)));
  if (!in || !torch::isfinite(values).all().item<bool>()) return {};
  return values;
}

void write_embedding(const fs::path& path, const torch::Tensor& embedding) {
  const torch::Tensor host = embedding.to(torch::kCPU, torch::kFloat).contiguous();
  const int64_t shape[2] = {host.size(0), host.size(1)};
  std::string bytes(kEmbeddingMagic, sizeof kEmbeddingMagic);
  bytes.append(reinterpret_cast<const char*>(shape), sizeof shape);
  bytes.append(reinterpret_cast<const char*>(host.data_ptr<float>()),
               static_cast<size_t>(host.numel()) * sizeof(float));
  write_file_atomic(path, bytes);
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
  return run;
}

SessionParts SessionParts::for_plan(const GenerationPlan& plan) {
  SessionParts parts;
  parts.stage2 = plan.needs_stage2();
  parts.clip = plan.needs_clip();
  return parts;
}

struct Session::Impl {
  c10::Device text_device{c10::kCPU};
  std::optional<TextEncoder> text;
  std::optional<UNet> unet1;
  std::optional<UNet> unet2;
  std::unique_ptr<NoiseAwareClip> clip;
  std::string text_encoder_sha256;                  // the embeddings cache key's model part
  std::map<std::string, torch::Tensor> embeddings;  // prompt -> (77, D) on the device
  // generate() may run on several threads at once (batch workers): the text encoder and the
  // embeddings map are shared state.
  std::mutex text_mutex;
};

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
  options.apply_threads();
  Manifest manifest = read_manifest(options.bundle);
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
        "(re-export it with scripts/export_if.py)",
        printable(manifest.name));
  }
  spdlog::info("loading bundle '{}' ({}) on {} in {}", printable(manifest.name),
               printable(manifest.dir.string()), device.str(), dtype_name(dtype));
  impl->text = TextEncoder::load(manifest, impl->text_device, dtype);
  impl->unet1 = UNet::load(manifest, manifest.stage(1), device, dtype);
  if (parts.stage2 && manifest.has_stage(2)) {
    impl->unet2 = UNet::load(manifest, manifest.stage(2), device, dtype);
  }
  if (parts.clip && manifest.clip) {
    impl->clip = std::make_unique<NoiseAwareClip>(NoiseAwareClip::load(manifest, device));
  }
  if (!options.embeddings_cache.empty()) {
    const auto it = manifest.files.find(manifest.text_encoder.file);
    impl->text_encoder_sha256 =
        it != manifest.files.end()
            ? it->second.sha256
            : detail::sha256_of_file(manifest.path_of(manifest.text_encoder.file));
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
  const T5Tokenizer* tokenizer = impl_->text ? &impl_->text->tokenizer() : nullptr;
  return plan_generation(request, manifest_, device_, tokenizer);
}

void Session::release_text_encoder() {
  const std::lock_guard<std::mutex> lock(impl_->text_mutex);
  impl_->text.reset();
}

bool Session::text_encoder_loaded() const {
  const std::lock_guard<std::mutex> lock(impl_->text_mutex);
  return impl_->text.has_value();
}

torch::Tensor Session::encode(const std::vector<std::string>& prompts) {
  const std::lock_guard<std::mutex> lock(impl_->text_mutex);
  std::vector<std::string> missing;
  for (const auto& prompt : prompts) {
    if (impl_->embeddings.count(prompt)) continue;
    if (!options_.embeddings_cache.empty()) {
      const fs::path file =
          options_.embeddings_cache / (detail::sha256_hex(impl_->text_encoder_sha256 + "\n" +
                                                          dtype_name(dtype_) + "\n" + prompt) +
                                       ".emb");
      torch::Tensor cached =
          read_embedding(file, manifest_.tokenizer.max_length, manifest_.text_encoder.hidden_size);
      if (cached.defined()) {
        impl_->embeddings[prompt] = cached.to(device_);
        continue;
      }
    }
    if (std::find(missing.begin(), missing.end(), prompt) == missing.end()) {
      missing.push_back(prompt);
    }
  }
  if (!missing.empty()) {
    if (!impl_->text) impl_->text = TextEncoder::load(manifest_, impl_->text_device, dtype_);
    for (size_t i = 0; i < missing.size(); ++i) {
      // One prompt per call, as the published code encodes them: a prompt's states then do
      // not depend on which other prompts share its batch (kernels round differently for
      // other batch sizes), so a cached prompt and a fresh one give the same bytes.
      const torch::Tensor state = impl_->text->encode({missing[i]})[0].to(device_);
      impl_->embeddings[missing[i]] = state;
      if (!options_.embeddings_cache.empty()) {
        std::error_code ec;
        fs::create_directories(options_.embeddings_cache, ec);
        const fs::path file = options_.embeddings_cache /
                              (detail::sha256_hex(impl_->text_encoder_sha256 + "\n" +
                                                  dtype_name(dtype_) + "\n" + missing[i]) +
                               ".emb");
        try {
          write_embedding(file, state);
        } catch (const Error& e) {
          spdlog::warn("embeddings cache: {}", e.what());
        }
      }
    }
  }
  std::vector<torch::Tensor> out;
  for (const auto& prompt : prompts) out.push_back(impl_->embeddings.at(prompt));
  return torch::stack(out);
}

GenerateResult Session::generate(const GenerationPlan& plan, const fs::path& out,
                                 const RunCallbacks& callbacks) {
  const GenerateRequest& request = plan.request;
  if (plan.needs_stage2() && !impl_->unet2) {
    throw Error(ErrorKind::kInvalidArgument, "stages",
                "this session was opened without its stage II model");
  }
  if (plan.balance && !impl_->clip) {
    throw Error(ErrorKind::kInvalidArgument, "balance",
                "this session was opened without its noise-aware CLIP");
  }
  for (const auto& note : plan.notes) spdlog::info("{}", note);
  const int64_t n = static_cast<int64_t>(plan.tasks.size());
  GenerateResult result;

  // 1. Prompts, once for all samples and both stages; the negative prompt is "".
  const auto encode_start = Clock::now();
  std::vector<std::string> prompts;
  for (const auto& task : plan.tasks) prompts.push_back(task.prompt);
  const Conditioning conditioning{encode({""}), encode(prompts)};
  if (options_.release_text_encoder) release_text_encoder();
  result.encode_seconds = seconds_since(encode_start);

  // 2. The method's pieces, shared by the samples.
  MtlOptions mtl = request.mtl;
  mtl.balance = plan.balance;
  torch::Tensor clip_text;
  if (plan.balance) clip_text = impl_->clip->embed_texts(prompts);
  std::unique_ptr<NoiseCombiner> combiner;
  if (request.method == Method::kBaseline) {
    combiner = std::make_unique<MeanCombiner>();
  } else {
    combiner = std::make_unique<MultiTaskCombiner>(mtl, impl_->clip.get(), clip_text);
  }
  torch::Tensor concept_mask_on_device;
  if (!plan.concept_tokens.empty()) {
    concept_mask_on_device =
        concept_mask(plan.concept_tokens, manifest_.tokenizer.max_length).to(device_);
  }
  const UNet& unet1 = *impl_->unet1;

  for (const auto& stage : plan.stages) {
    StageTiming timing;
    timing.stage = stage.stage;
    timing.steps = stage.steps;
    result.stages.push_back(timing);
  }

  // The UNet call of a stage as a Denoiser: timed when profiling, and for stage I with
  // save_attention also keeping the conditional half's concept maps.
  auto make_denoiser = [&](const UNet& unet, StageTiming& timing,
                           std::vector<torch::Tensor>* maps) -> Denoiser {
    return [&, maps](const torch::Tensor& x, int64_t t, const torch::Tensor& text,
                     const torch::Tensor& labels) {
      Clock::time_point start;
      if (callbacks.profile) {
        synchronize(device_);
        start = Clock::now();
      }
      torch::Tensor output;
      if (maps) {
        auto with_attention = unet.forward_with_attention(x, t, text);
        maps->push_back(aggregate_concept_maps(with_attention.attention.narrow(1, n, n),
                                               concept_mask_on_device, *plan.map_views));
        output = with_attention.output;
      } else {
        output = unet(x, t, text, labels);
      }
      if (callbacks.profile) {
        synchronize(device_);
        timing.unet_seconds += seconds_since(start);
        ++timing.unet_calls;
      }
      return output;
    };
  };

  const int num_stages = static_cast<int>(plan.stages.size());
  for (int s = 0; s < request.num_samples; ++s) {
    if (callbacks.interrupted && callbacks.interrupted->load()) {
      throw Error(ErrorKind::kInterrupted, "interrupted before sample " + std::to_string(s));
    }
    const uint64_t seed = request.seed + static_cast<uint64_t>(s);
    NoiseSource noise(seed, dtype_, device_);
    const auto sample_start = Clock::now();
    std::vector<StageRecords> records(plan.stages.size());
    std::vector<torch::Tensor> images;
    std::optional<AntiSegregation> antiseg;

    for (size_t si = 0; si < plan.stages.size(); ++si) {
      const StagePlan& stage = plan.stages[si];
      StageTiming& timing = result.stages[si];
      StageRecords& rec = records[si];
      reset_peak_memory(device_);
      const auto stage_start = Clock::now();

      StageSpec spec = StageSpec::base(stage.scheduler, stage.channels, stage.size);
      torch::Tensor x;
      Denoiser denoiser;
      if (stage.stage == 1) {
        x = draw_initial_noise(spec, noise);
        denoiser = make_denoiser(unet1, timing, request.save_attention ? &rec.maps : nullptr);
      } else {
        // Stage II, in the published order: its initial noise, then the augmentation noise.
        SuperResolutionStart start =
            start_super_resolution(stage.scheduler, *stage.noising_scheduler, stage.noise_level,
                                   stage.size, images.back(), noise);
        spec = std::move(start.spec);
        x = start.x;
        denoiser = make_denoiser(*impl_->unet2, timing, nullptr);
      }
      MultiViewSampler sampler(denoiser, spec, *stage.views, conditioning, *combiner);
      if (stage.stage == 1 && plan.antiseg) {
        antiseg.emplace(unet1, *stage.views, *plan.map_views, conditioning.prompts,
                        concept_mask_on_device, request.antiseg_options, stage.steps);
        sampler.set_post_step_hook([&](const torch::Tensor& in, int i, int64_t t) {
          if (!callbacks.profile) return (*antiseg)(in, i, t);
          synchronize(device_);
          const auto start = Clock::now();
          torch::Tensor updated = (*antiseg)(in, i, t);
          synchronize(device_);
          if (i < antiseg->steps()) {
            timing.antiseg_seconds += seconds_since(start);
            ++timing.antiseg_calls;
          }
          return updated;
        });
      }
      sampler.set_observer([&](const StepRecord& record) {
        if (callbacks.interrupted && callbacks.interrupted->load()) {
          throw Error(ErrorKind::kInterrupted,
                      "interrupted; no output was written for this sample");
        }
        rec.weights.push_back(record.combined.weights);
        rec.scales.push_back(record.combined.scale);
        if (record.combined.scores.defined()) rec.scores.push_back(record.combined.scores);
        if (callbacks.progress) {
          callbacks.progress({s, request.num_samples, stage.stage, num_stages, record.index + 1,
                              record.num_steps, seconds_since(stage_start)});
        }
      });
      SamplerParams params;
      params.steps = stage.steps;
      params.guidance_scale = stage.guidance;
      images.push_back(sampler.run(x, params, noise));
      synchronize(device_);
      rec.seconds = seconds_since(stage_start);
      timing.seconds += rec.seconds;
      timing.peak_device_mib = std::max(timing.peak_device_mib, peak_memory_mib(device_));
    }
    const double sample_seconds = seconds_since(sample_start);

    // 3. Metadata: the resolved request of exactly this sample (so that it reproduces the
    // picture), what the method did per step, and what made it.
    GenerateRequest this_sample = request;
    this_sample.seed = seed;
    this_sample.num_samples = 1;
    nlohmann::json stages_json = nlohmann::json::array();
    bool clamped = false;
    for (size_t si = 0; si < plan.stages.size(); ++si) {
      const StagePlan& stage = plan.stages[si];
      nlohmann::json per_step = records[si].to_json();
      if (!records[si].scores.empty() &&
          torch::stack(records[si].scores).min().item<double>() <= mtl.min_score) {
        clamped = true;
      }
      if (stage.stage == 1 && antiseg && !antiseg->records().empty()) {
        std::vector<torch::Tensor> losses;
        for (const auto& r : antiseg->records()) losses.push_back(r.loss);
        per_step["antiseg_losses"] = rows_to_json(torch::stack(losses).unsqueeze(1));
      }
      nlohmann::json j = {
          {"stage", stage.stage},
          {"size", stage.size},
          {"steps", stage.steps},
          {"guidance", stage.guidance},
          {"scheduler", stage.scheduler.to_json()},
          {"per_step", per_step},
          {"seconds", records[si].seconds},
          {"seconds_per_step", records[si].seconds / stage.steps},
          {"peak_memory_mib", peak_memory_mib(device_)},
          {"peak_memory_kind", device_.is_cuda() ? "cuda allocated" : "host resident set"}};
      if (stage.stage == 2) {
        j["noise_level"] = stage.noise_level;
        j["noising_scheduler"] = stage.noising_scheduler->to_json();
      }
      if (stage.stage == 1 && plan.antiseg) {
        j["antiseg_steps"] = antiseg->steps();
        j["antiseg_target"] = antiseg->target();
      }
      stages_json.push_back(j);
    }
    if (clamped) {
      spdlog::warn(
          "some noise-aware CLIP scores were <= {} and were clamped before balancing (see "
          "clip_scores in metadata.json)",
          mtl.min_score);
    }
    nlohmann::json method = {{"name", method_name(request.method)}, {"combiner", combiner->name()}};
    if (request.method == Method::kMtl) {
      method["balance"] = plan.balance;
      method["rectify"] = mtl.rectify;
      method["antiseg"] = plan.antiseg;
      method["mtl_options"] = mtl.to_json();
      if (plan.antiseg) method["antiseg_options"] = request.antiseg_options.to_json();
    }
    if (!plan.concept_tokens.empty()) method["concept_tokens"] = plan.concept_tokens;
    if (!plan.notes.empty()) method["notes"] = plan.notes;
    const nlohmann::json metadata = {
        {"program", program_info()},
        {"created", utc_timestamp()},
        {"command_line", callbacks.command_line},
        {"request", this_sample.to_json()},
        {"session", options_.to_json()},
        {"sample_index", s},
        {"seed", seed},
        {"bundle",
         {{"name", manifest_.name},
          {"path", manifest_.dir.string()},
          {"manifest_sha256", manifest_.sha256},
          {"schema_version", manifest_.schema_version}}},
        {"device", device_.str()},
        {"dtype", dtype_name(dtype_)},
        {"method", method},
        {"stages", stages_json},
        {"timings",
         {{"load_seconds", load_seconds_},
          {"encode_seconds", result.encode_seconds},
          {"sampling_seconds", sample_seconds}}},
    };

    // 4. The sample folder, whole or not at all.
    std::vector<detail::StageImages> stage_images;
    for (size_t si = 0; si < plan.stages.size(); ++si) {
      stage_images.push_back({images[si].squeeze(0).to(torch::kCPU), plan.stages[si].views.get()});
    }
    const std::vector<torch::Tensor> maps =
        records.empty() ? std::vector<torch::Tensor>{} : records[0].maps;
    const std::string folder = callbacks.folder_name ? callbacks.folder_name(seed) : "";
    SampleResult sample{detail::write_sample(out, plan.tasks, stage_images, maps, metadata, folder),
                        seed, sample_seconds};
    spdlog::info("wrote {} ({:.2f} s)", sample.dir.string(), sample_seconds);
    result.samples.push_back(sample);
    if (callbacks.sample_done) callbacks.sample_done(sample);
  }
  return result;
}

}  // namespace anagram
