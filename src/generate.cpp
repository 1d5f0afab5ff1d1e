#include "anagram/generate.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdlib>
#include <fstream>

#include "anagram/bundle.h"
#include "anagram/combiner.h"
#include "anagram/ddpm_scheduler.h"
#include "anagram/device.h"
#include "anagram/error.h"
#include "anagram/image_io.h"
#include "anagram/metadata.h"
#include "anagram/noise_source.h"
#include "anagram/output.h"
#include "anagram/sampler.h"
#include "anagram/text_encoder.h"
#include "anagram/unet.h"

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

// Sheets show 64x64 pictures at 256 pixels so they can be looked at.
int display_factor(int64_t size) { return size >= 256 ? 1 : static_cast<int>(256 / size); }

}  // namespace

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

GenerateResult generate(const GenerateOptions& options, const ProgressCallback& progress,
                        const std::atomic<bool>* interrupted) {
  // 1. Check inputs: everything that can be wrong with the request fails before loading.
  options.validate();
  const std::vector<Task> tasks = resolve_tasks(options);
  const c10::Device device = parse_device(options.device);
  const Manifest manifest = read_manifest(options.bundle);
  const c10::ScalarType dtype = resolve_dtype(options.dtype, manifest.dtype, device);
  const DDPMSchedulerConfig scheduler_config = DDPMSchedulerConfig::from_json(manifest.scheduler);
  std::vector<std::shared_ptr<const View>> views;
  for (const auto& task : tasks) views.push_back(task.view);
  const ViewStack view_stack(views, manifest.image_size, manifest.image_size, device);
  prepare_output_dir(options.out);

  // 2. Load the models.
  GenerateResult result;
  const auto load_start = Clock::now();
  spdlog::info("loading bundle '{}' ({}) on {} in {}", manifest.name, manifest.dir.string(),
               device.str(), dtype_name(dtype));
  const UNet unet = UNet::load(manifest, device, dtype);
  const TextEncoder text_encoder = TextEncoder::load(manifest, device, dtype);
  result.load_seconds = seconds_since(load_start);

  // 3. Encode the prompts once for all samples; the negative prompt is "".
  std::vector<std::string> prompts;
  for (const auto& task : tasks) prompts.push_back(task.prompt);
  Conditioning conditioning{text_encoder.encode({""}), text_encoder.encode(prompts)};

  const MeanCombiner combiner;
  StageOneSampler sampler(unet, scheduler_config, view_stack, conditioning, combiner,
                          manifest.image_channels, manifest.image_size);
  SamplerParams params;
  params.steps = options.steps;
  params.guidance_scale = options.guidance;

  double total_sampling_seconds = 0;
  for (int s = 0; s < options.num_samples; ++s) {
    const uint64_t seed = options.seed + static_cast<uint64_t>(s);
    // 4. The denoising loop; per-step weights and scales stay on the device until the end.
    std::vector<torch::Tensor> weights, scales;
    const auto start = Clock::now();
    sampler.set_observer([&](const StepRecord& record) {
      if (interrupted && interrupted->load()) {
        throw Error(ErrorKind::kRuntime, "interrupted; no output was written for this sample");
      }
      weights.push_back(record.combined.weights);
      scales.push_back(record.combined.scale);
      if (progress) {
        progress(
            {s, options.num_samples, record.index + 1, record.num_steps, seconds_since(start)});
      }
    });
    NoiseSource noise(seed, dtype, device);
    const torch::Tensor image = sampler.sample(params, noise).squeeze(0);
    const auto seen = view_stack.apply_each(image).to(torch::kCPU);  // syncs the device once
    const double sample_seconds = seconds_since(start);
    total_sampling_seconds += sample_seconds;

    // 5. Write the sample folder: anagram, each view's picture, the sheet, metadata.
    char name[32];
    std::snprintf(name, sizeof name, "sample_%03d", s);
    SampleFolder folder(options.out, name);
    folder.add_file("anagram.png", encode_png(to_rgb8(image)));
    std::vector<RgbImage> tiles;
    std::vector<std::string> captions;
    nlohmann::json view_files = nlohmann::json::array();
    for (size_t k = 0; k < tasks.size(); ++k) {
      const RgbImage picture = to_rgb8(seen[static_cast<int64_t>(k)]);
      const std::string file = "view_" + std::to_string(k) + "_" + tasks[k].view->name() + "_" +
                               slugify(tasks[k].prompt) + ".png";
      folder.add_file(file, encode_png(picture));
      tiles.push_back(upscale_nearest(picture, display_factor(manifest.image_size)));
      captions.push_back(tasks[k].view->name() + ": " + tasks[k].prompt);
      view_files.push_back({{"view", tasks[k].view->name()},
                            {"view_arg", tasks[k].view->arg()},
                            {"prompt", tasks[k].prompt},
                            {"file", file}});
    }
    folder.add_file("sheet.png", encode_png(make_sheet(tiles, captions)));

    nlohmann::json metadata = {
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
        {"method", {{"name", "baseline"}, {"combiner", combiner.name()}}},
        {"tasks", view_files},
        {"scheduler", scheduler_config.to_json()},
        {"per_step",
         {{"weights", rows_to_json(torch::stack(weights))},
          {"scales", rows_to_json(torch::stack(scales).unsqueeze(1))}}},
        {"timings",
         {{"load_seconds", result.load_seconds},
          {"sampling_seconds", sample_seconds},
          {"seconds_per_step", sample_seconds / options.steps}}},
    };
    folder.add_file("metadata.json", metadata.dump(2) + "\n");
    result.sample_dirs.push_back(folder.commit());
    spdlog::info("wrote {} ({:.2f} s, {:.3f} s/step)", result.sample_dirs.back().string(),
                 sample_seconds, sample_seconds / options.steps);
  }
  result.seconds_per_step = total_sampling_seconds / (options.steps * options.num_samples);
  return result;
}

}  // namespace anagram
