#include "anagram/generate.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdlib>
#include <fstream>

#include "anagram/antiseg.h"
#include "anagram/bundle.h"
#include "anagram/clip_scorer.h"
#include "anagram/combiner.h"
#include "anagram/ddpm_scheduler.h"
#include "anagram/device.h"
#include "anagram/error.h"
#include "anagram/metadata.h"
#include "anagram/mtl_combiner.h"
#include "anagram/noise_source.h"
#include "anagram/output.h"
#include "anagram/sampler.h"
#include "anagram/text_encoder.h"
#include "anagram/unet.h"
#include "sample_output.h"

namespace anagram {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string apply_style(const std::string& style, const std::string& prompt) {
  // Ref: visual_anagrams generate.py: f'{style} {prompt}'.strip()
  std::string text = style.empty() ? prompt : style + " " + prompt;
  const auto first = text.find_first_not_of(" \t\n\r");
  const auto last = text.find_last_not_of(" \t\n\r");
  return first == std::string::npos ? "" : text.substr(first, last - first + 1);
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

}  // namespace

std::string method_name(Method method) { return method == Method::kMtl ? "mtl" : "baseline"; }

std::string default_bundle_path() {
  if (const char* env = std::getenv("ANAGRAM_BUNDLE"); env && *env) return env;
#ifdef ANAGRAM_DEFAULT_BUNDLE_DIR
  return ANAGRAM_DEFAULT_BUNDLE_DIR;
#else
  return "models/tiny-if";
#endif
}

void GenerateOptions::validate() const {
  auto invalid = [](const std::string& what) { throw Error(ErrorKind::kInvalidArgument, what); };
  if (prompts.empty()) invalid("at least one --prompt is required");
  for (const auto& prompt : prompts) {
    if (apply_style(style, prompt).empty()) invalid("--prompt must not be empty");
  }
  if (steps <= 0) invalid("--steps must be a positive number, got " + std::to_string(steps));
  if (!(guidance >= 0)) invalid("--guidance must be >= 0");
  if (num_samples <= 0) {
    invalid("--num-samples must be a positive number, got " + std::to_string(num_samples));
  }
  if (!view_args.empty() && view_args.size() != views.size()) {
    invalid("--view-arg was given " + std::to_string(view_args.size()) + " times for " +
            std::to_string(views.size()) + " --view (give one per --view, \"\" for none)");
  }
  if (out.empty()) invalid("--out must name a folder");
  if (!(antiseg_options.learning_rate >= 0)) invalid("--antiseg-lr must be >= 0");
  if (antiseg_options.steps < -1) invalid("--antiseg-steps must be >= 0");
  resolve_tasks(*this);  // checks the prompt/view counts and every view name and argument
}

nlohmann::json GenerateOptions::to_json() const {
  return {{"bundle", bundle},       {"prompts", prompts}, {"views", views},
          {"view_args", view_args}, {"style", style},     {"steps", steps},
          {"guidance", guidance},   {"seed", seed},       {"num_samples", num_samples},
          {"device", device},       {"dtype", dtype},     {"out", out}};
}

std::vector<Task> resolve_tasks(const GenerateOptions& options) {
  const size_t n_prompts = options.prompts.size();
  const size_t n_views = options.views.size();
  const bool first_upright = n_views + 1 == n_prompts;
  if (n_views != n_prompts && !first_upright) {
    throw Error(ErrorKind::kInvalidArgument,
                std::to_string(n_prompts) + " --prompt but " + std::to_string(n_views) +
                    " --view: give one view per prompt, or one fewer (the first prompt is "
                    "then seen upright)");
  }
  std::vector<Task> tasks;
  for (size_t i = 0; i < n_prompts; ++i) {
    const std::string prompt = apply_style(options.style, options.prompts[i]);
    if (first_upright && i == 0) {
      tasks.push_back({make_view("identity"), prompt});
      continue;
    }
    const size_t v = first_upright ? i - 1 : i;
    const std::string arg = options.view_args.empty() ? "" : options.view_args[v];
    tasks.push_back({make_view(options.views[v], arg), prompt});
  }
  return tasks;
}

namespace {

// The method's pieces for one run: the combiner, and what anti-segregation and the attention
// diagnostics need. Built once; the samples share it.
struct MethodSetup {
  std::unique_ptr<NoiseAwareClip> clip;
  std::unique_ptr<NoiseCombiner> combiner;
  MtlOptions mtl;  // as used (balancing may have fallen back to equal weights)
  bool antiseg = false;
  std::unique_ptr<ViewStack> map_views;  // the views at the attention maps' resolution
  torch::Tensor concept_mask;            // (N, 77) on the device
  std::vector<std::vector<int64_t>> concept_tokens;
};

// Checks what the method needs from the bundle and the prompts; no model is loaded here.
MethodSetup check_method(const GenerateOptions& options, const Manifest& manifest,
                         const std::vector<Task>& tasks, const c10::Device& device) {
  MethodSetup setup;
  setup.mtl = options.mtl;
  const bool mtl = options.method == Method::kMtl;
  setup.antiseg = mtl && options.antiseg;
  if (!setup.antiseg && !options.save_attention) return setup;

  const int64_t resolution = manifest.unet.attention.query_resolution;
  if (manifest.unet.attention.num_layers <= 0) {
    throw Error(ErrorKind::kBundle, "bundle '" + manifest.dir.string() +
                                        "' exposes no cross-attention layers (needed by "
                                        "anti-segregation and --save-attention)");
  }
  std::vector<ViewPtr> views;
  for (const auto& task : tasks) {
    if (!task.view->supports_size(resolution, resolution)) {
      throw Error(ErrorKind::kInvalidArgument,
                  "view '" + task.view->name() + "' is not defined on the " +
                      std::to_string(resolution) + "x" + std::to_string(resolution) +
                      " attention maps that anti-segregation uses (use --no-antiseg)");
    }
    views.push_back(task.view);
  }
  setup.map_views = std::make_unique<ViewStack>(views, resolution, resolution, device);
  if (!options.concepts.empty() && options.concepts.size() != tasks.size()) {
    throw Error(ErrorKind::kInvalidArgument, "--concept was given " +
                                                 std::to_string(options.concepts.size()) +
                                                 " times for " + std::to_string(tasks.size()) +
                                                 " prompts (give one per prompt, \"\" for the "
                                                 "last word)");
  }
  const T5Tokenizer tokenizer =
      T5Tokenizer::load(manifest.path_of(manifest.tokenizer.file), manifest.tokenizer.max_length,
                        manifest.tokenizer.pad_id, manifest.tokenizer.eos_id);
  for (size_t k = 0; k < tasks.size(); ++k) {
    const std::string concept = options.concepts.empty() ? "" : options.concepts[k];
    setup.concept_tokens.push_back(find_concept_tokens(tokenizer, tasks[k].prompt, concept));
  }
  setup.concept_mask = concept_mask(setup.concept_tokens, manifest.tokenizer.max_length).to(device);
  return setup;
}

void build_combiner(MethodSetup& setup, const GenerateOptions& options, const Manifest& manifest,
                    const c10::Device& device, const std::vector<std::string>& prompts) {
  if (options.method == Method::kBaseline) {
    setup.combiner = std::make_unique<MeanCombiner>();
    return;
  }
  if (setup.mtl.balance && !manifest.clip) {
    spdlog::warn(
        "bundle '{}' has no noise-aware CLIP: noise vector balancing falls back to "
        "equal weights",
        manifest.name);
    setup.mtl.balance = false;
  }
  torch::Tensor text_embeddings;
  if (setup.mtl.balance) {
    setup.clip = std::make_unique<NoiseAwareClip>(NoiseAwareClip::load(manifest, device));
    text_embeddings = setup.clip->embed_texts(prompts);  // once per run
  }
  setup.combiner =
      std::make_unique<MultiTaskCombiner>(setup.mtl, setup.clip.get(), text_embeddings);
}

nlohmann::json method_json(const GenerateOptions& options, const MethodSetup& setup,
                           int antiseg_steps, double antiseg_target) {
  nlohmann::json j = {{"name", method_name(options.method)}, {"combiner", setup.combiner->name()}};
  if (options.method == Method::kMtl) {
    j["balance"] = setup.mtl.balance;
    j["rectify"] = setup.mtl.rectify;
    j["mtl_options"] = setup.mtl.to_json();
    j["antiseg"] = setup.antiseg;
    if (setup.antiseg) {
      j["antiseg_options"] = options.antiseg_options.to_json();
      j["antiseg_steps"] = antiseg_steps;
      j["antiseg_target"] = antiseg_target;
    }
  }
  if (!setup.concept_tokens.empty()) j["concept_tokens"] = setup.concept_tokens;
  return j;
}

}  // namespace

GenerateResult generate(const GenerateOptions& options, const ProgressCallback& progress,
                        const std::atomic<bool>* interrupted) {
  // 1. Check inputs: everything that can be wrong with the request fails before loading.
  options.validate();
  const std::vector<Task> tasks = resolve_tasks(options);
  const c10::Device device = parse_device(options.device);
  const Manifest manifest = read_manifest(options.bundle);
  const c10::ScalarType dtype = resolve_dtype(options.dtype, manifest.dtype, device);
  const DDPMSchedulerConfig scheduler_config = DDPMSchedulerConfig::from_json(manifest.scheduler);
  std::vector<ViewPtr> views;
  for (const auto& task : tasks) views.push_back(task.view);
  const ViewStack view_stack(views, manifest.image_size, manifest.image_size, device);
  MethodSetup setup = check_method(options, manifest, tasks, device);
  prepare_output_dir(options.out);

  // 2. Load the models.
  GenerateResult result;
  const auto load_start = Clock::now();
  spdlog::info("loading bundle '{}' ({}) on {} in {}", manifest.name, manifest.dir.string(),
               device.str(), dtype_name(dtype));
  const UNet unet = UNet::load(manifest, device, dtype);
  const TextEncoder text_encoder = TextEncoder::load(manifest, device, dtype);

  // 3. Encode the prompts once for all samples; the negative prompt is "".
  std::vector<std::string> prompts;
  for (const auto& task : tasks) prompts.push_back(task.prompt);
  Conditioning conditioning{text_encoder.encode({""}), text_encoder.encode(prompts)};
  build_combiner(setup, options, manifest, device, prompts);
  result.load_seconds = seconds_since(load_start);

  // The UNet, or with --save-attention the UNet that also keeps the conditional half's maps.
  const int64_t n = static_cast<int64_t>(tasks.size());
  std::vector<torch::Tensor> step_maps;
  Denoiser denoiser = unet;
  if (options.save_attention) {
    denoiser = [&](const torch::Tensor& x, int64_t t, const torch::Tensor& text) {
      auto out = unet.forward_with_attention(x, t, text);
      step_maps.push_back(aggregate_concept_maps(out.attention.narrow(1, n, n), setup.concept_mask,
                                                 *setup.map_views));
      return out.output;
    };
  }
  StageOneSampler sampler(denoiser, scheduler_config, view_stack, conditioning, *setup.combiner,
                          manifest.image_channels, manifest.image_size);
  SamplerParams params;
  params.steps = options.steps;
  params.guidance_scale = options.guidance;

  double total_sampling_seconds = 0;
  for (int s = 0; s < options.num_samples; ++s) {
    const uint64_t seed = options.seed + static_cast<uint64_t>(s);
    // 4. The denoising loop; per-step records stay on the device until the sample is done.
    std::vector<torch::Tensor> weights, scales, scores;
    step_maps.clear();
    std::optional<AntiSegregation> antiseg;
    if (setup.antiseg) {
      antiseg.emplace(unet, view_stack, *setup.map_views, conditioning.prompts, setup.concept_mask,
                      options.antiseg_options, options.steps);
      sampler.set_post_step_hook(std::ref(*antiseg));
    }
    const auto start = Clock::now();
    sampler.set_observer([&](const StepRecord& record) {
      if (interrupted && interrupted->load()) {
        throw Error(ErrorKind::kRuntime, "interrupted; no output was written for this sample");
      }
      weights.push_back(record.combined.weights);
      scales.push_back(record.combined.scale);
      if (record.combined.scores.defined()) scores.push_back(record.combined.scores);
      if (progress) {
        progress(
            {s, options.num_samples, record.index + 1, record.num_steps, seconds_since(start)});
      }
    });
    NoiseSource noise(seed, dtype, device);
    const torch::Tensor image = sampler.sample(params, noise).squeeze(0).to(torch::kCPU);
    const double sample_seconds = seconds_since(start);  // the copy above synced the device
    total_sampling_seconds += sample_seconds;

    // 5. Metadata: everything needed to rerun the sample and plot what the method did.
    nlohmann::json per_step = {{"weights", rows_to_json(torch::stack(weights))},
                               {"scales", rows_to_json(torch::stack(scales).unsqueeze(1))}};
    if (!scores.empty()) {
      const torch::Tensor all_scores = torch::stack(scores);
      per_step["clip_scores"] = rows_to_json(all_scores);
      if (all_scores.min().item<double>() <= 0) {
        spdlog::warn(
            "some noise-aware CLIP scores were <= 0 and were clamped to {} before "
            "balancing (see clip_scores in metadata.json)",
            setup.mtl.min_score);
      }
    }
    if (antiseg && !antiseg->records().empty()) {
      std::vector<torch::Tensor> losses;
      for (const auto& r : antiseg->records()) losses.push_back(r.loss);
      per_step["antiseg_losses"] = rows_to_json(torch::stack(losses).unsqueeze(1));
    }
    const nlohmann::json metadata = {
        {"program", program_info()},
        {"created", utc_timestamp()},
        {"command_line", options.command_line},
        {"options", options.to_json()},
        {"sample_index", s},
        {"seed", seed},
        {"bundle",
         {{"name", manifest.name},
          {"path", manifest.dir.string()},
          {"manifest_sha256", manifest.sha256}}},
        {"device", device.str()},
        {"dtype", dtype_name(dtype)},
        {"method", method_json(options, setup, antiseg ? antiseg->steps() : 0,
                               antiseg ? antiseg->target() : 0.0)},
        {"scheduler", scheduler_config.to_json()},
        {"per_step", per_step},
        {"timings",
         {{"load_seconds", result.load_seconds},
          {"sampling_seconds", sample_seconds},
          {"seconds_per_step", sample_seconds / options.steps}}},
    };

    // 6. The sample folder, whole or not at all.
    char name[32];
    std::snprintf(name, sizeof name, "sample_%03d", s);
    result.sample_dirs.push_back(
        detail::write_sample(options.out, name, view_stack, tasks, {image, step_maps}, metadata));
    spdlog::info("wrote {} ({:.2f} s, {:.3f} s/step)", result.sample_dirs.back().string(),
                 sample_seconds, sample_seconds / options.steps);
  }
  result.seconds_per_step = total_sampling_seconds / (options.steps * options.num_samples);
  return result;
}

}  // namespace anagram
