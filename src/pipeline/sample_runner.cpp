#include "pipeline/sample_runner.h"

#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <torch/cuda.h>

#include <chrono>
#include <optional>

#include "anagram/core/error.h"
#include "anagram/diffusion/antiseg.h"
#include "anagram/pipeline/model_callbacks.h"

#ifdef ANAGRAM_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace anagram::detail {
namespace {

using Clock = std::chrono::steady_clock;

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

// A list of per-step device tensors as one host tensor (undefined when empty).
torch::Tensor stacked_on_host(const std::vector<torch::Tensor>& steps) {
  if (steps.empty()) return {};
  return torch::stack(steps).to(torch::kCPU, torch::kFloat);
}

// Where a stage starts: pure noise, or (super-resolution) the previous stage's picture as
// extra input, with the noise drawn in the published order. A latent stage's inputs cannot be
// scored by the noise-aware CLIP.
std::pair<StageSpec, torch::Tensor> start_of(const StagePlan& stage, const torch::Tensor& previous,
                                             NoiseSource& noise) {
  StageSpec spec;
  torch::Tensor x;
  if (stage.super_resolution) {
    const SuperResolution& sr = *stage.super_resolution;
    // The previous picture as it is saved: a latent stage upscales what the viewer saw.
    const torch::Tensor picture = stage.latent ? previous.clamp(-1, 1) : previous;
    SuperResolutionStart start = start_super_resolution(
        stage.scheduler, sr.noising_scheduler, sr.noise_level, stage.size, picture, noise,
        stage.channels,
        sr.augmentation_noise_first ? NoiseOrder::kAugmentationFirst : NoiseOrder::kInitialFirst);
    spec = std::move(start.spec);
    x = start.x;
  } else {
    spec = StageSpec::base(stage.scheduler, stage.channels, stage.size);
    x = draw_initial_noise(spec, noise);
  }
  if (!stage.scored) spec.scored_channels = 0;
  return {std::move(spec), x};
}

}  // namespace

// The per-step records of one stage while it runs (device tensors, moved once at the end).
struct SampleRunner::DeviceRecords {
  std::vector<torch::Tensor> weights, scales, scores, maps;
};

SampleRunner::SampleRunner(const GenerationPlan& plan, std::vector<StageModels> stages,
                           const NoiseCombiner& combiner, c10::Device device, c10::ScalarType dtype,
                           const RunOptions& run)
    : plan_(plan),
      stages_(std::move(stages)),
      combiner_(combiner),
      device_(device),
      dtype_(dtype),
      run_(run) {
  if (stages_.size() != plan_.stages.size()) {
    throw Error(ErrorKind::kInvalidArgument, "stages",
                "the runner got models for " + std::to_string(stages_.size()) +
                    " stages, the plan has " + std::to_string(plan_.stages.size()));
  }
  for (size_t s = 0; s < stages_.size(); ++s) {
    if (!stages_[s].unet || (plan_.stages[s].latent && !stages_[s].decoder)) {
      throw Error(ErrorKind::kInvalidArgument, "stages",
                  "this session was opened without the models of stage " +
                      std::to_string(plan_.stages[s].stage));
    }
  }
  for (const auto& task : plan_.tasks) views_.push_back(task.view);
  if (plan_.attention_resolution > 0) {
    concept_mask_ = concept_mask(plan_.concept_tokens, stages_.front().conditioning.prompts.size(1))
                        .to(device_);
  }
}

void SampleRunner::check_interrupted(const char* when) const {
  if (run_.interrupted && run_.interrupted->load()) {
    throw Error(ErrorKind::kInterrupted, std::string("interrupted ") + when);
  }
}

Sample SampleRunner::run(int index) const {
  check_interrupted("before the sample");
  Sample sample;
  sample.tasks = plan_.tasks;
  sample.index = index;
  sample.seed = plan_.request.seed + static_cast<uint64_t>(index);
  NoiseSource noise(sample.seed, dtype_, device_);
  const auto start = Clock::now();
  torch::Tensor picture;  // (1, C, S, S) on the device: the last stage's picture
  for (size_t s = 0; s < plan_.stages.size(); ++s) {
    sample.stages.push_back(run_stage(s, picture, noise, index));
  }
  sample.seconds = seconds_since(start);
  return sample;
}

// The UNet call of a stage as the sampler's Denoiser: timed when profiling, and with `maps`
// also keeping the conditional half's concept maps.
Denoiser SampleRunner::denoiser(const UNet& unet, StageTiming& timing, DeviceRecords* maps,
                                const ViewStack* map_views) const {
  const int64_t n = static_cast<int64_t>(plan_.tasks.size());
  return [this, &unet, &timing, maps, map_views, n](const torch::Tensor& x, int64_t t,
                                                    const torch::Tensor& text,
                                                    const torch::Tensor& labels) {
    Clock::time_point start;
    if (run_.profile) {
      synchronize(device_);
      start = Clock::now();
    }
    torch::Tensor output;
    if (maps) {
      auto with_attention = unet.forward_with_attention(x, t, text);
      maps->maps.push_back(aggregate_concept_maps(with_attention.attention.narrow(1, n, n),
                                                  concept_mask_, *map_views));
      output = with_attention.output;
    } else {
      output = unet(x, t, text, labels);
    }
    if (run_.profile) {
      synchronize(device_);
      timing.unet_seconds += seconds_since(start);
      ++timing.unet_calls;
    }
    return output;
  };
}

StageResult SampleRunner::run_stage(size_t stage_index, torch::Tensor& picture, NoiseSource& noise,
                                    int index) const {
  const StagePlan& stage = plan_.stages[stage_index];
  const StageModels& models = stages_[stage_index];
  const UNet& unet = *models.unet;
  StageResult result;
  result.stage = stage.stage;
  result.size = stage.picture_size();
  result.steps = stage.steps;
  reset_peak_memory(device_);
  const auto stage_start = Clock::now();

  // 1. The device-bound helpers of this stage, built here on this runner's device.
  const ViewStack views(views_, stage.size, stage.size, device_);
  std::optional<ViewStack> map_views;
  if (stage.antiseg || stage.save_attention) {
    map_views.emplace(views_, plan_.attention_resolution, plan_.attention_resolution, device_);
  }
  auto [spec, x] = start_of(stage, picture, noise);
  std::optional<FilterStack> filters;
  if (plan_.factorized()) {
    filters.emplace(views_, stage.size, device_);
    spec.filters = &*filters;
  }
  DeviceRecords records;
  MultiViewSampler sampler(denoiser(unet, result.timing, stage.save_attention ? &records : nullptr,
                                    map_views ? &*map_views : nullptr),
                           std::move(spec), views, models.conditioning, combiner_);

  // 2. The method's anti-segregation after each of the first K steps.
  std::optional<AntiSegregation> antiseg;
  if (stage.antiseg) {
    antiseg.emplace(attention_probe(unet), views, *map_views, models.conditioning.prompts,
                    concept_mask_, plan_.request.antiseg_options, stage.steps);
    sampler.set_post_step_hook([&](const torch::Tensor& in, int i, int64_t t) {
      if (!run_.profile || i >= antiseg->steps()) return (*antiseg)(in, i, t);
      synchronize(device_);
      const auto start = Clock::now();
      torch::Tensor updated = (*antiseg)(in, i, t);
      synchronize(device_);
      result.timing.antiseg_seconds += seconds_since(start);
      ++result.timing.antiseg_calls;
      return updated;
    });
  }

  // 3. Per step: the records (kept on the device), progress, interrupts.
  sampler.set_observer([&](const StepRecord& step) {
    check_interrupted("; no output was written for this sample");
    records.weights.push_back(step.combined.weights);
    records.scales.push_back(step.combined.scale);
    if (step.combined.scores.defined()) records.scores.push_back(step.combined.scores);
    if (run_.progress) {
      run_.progress({index, plan_.request.num_samples, stage.stage, plan_.num_stages(),
                     step.index + 1, step.num_steps, seconds_since(stage_start)});
    }
  });
  SamplerParams params;
  params.steps = stage.steps;
  params.guidance_scale = stage.guidance;
  picture = sampler.run(x, params, noise);  // (1, C, S, S): the next stage starts from it

  // 4. A latent stage's picture: its latents decoded, and its views at the picture's size.
  std::optional<ViewStack> picture_views;
  if (stage.latent) {
    // The decode is one long call (minutes at 1024 on a CPU): say so, since progress stops.
    spdlog::info("stage {}: decoding {}x{} latents into the {}x{} picture{}", stage.stage,
                 stage.size, stage.size, stage.picture_size(), stage.picture_size(),
                 models.decoder->tiles(stage.size, stage.latent->tiling) ? " in tiles" : "");
    picture = models.decoder->decode(picture, stage.latent->tiling);
    if (!torch::isfinite(picture).all().item<bool>()) {
      throw Error(ErrorKind::kRuntime, "stage " + std::to_string(stage.stage) +
                                           " gave a picture that is not finite (NaN or inf); "
                                           "no output was written for this sample");
    }
    picture_views.emplace(views_, stage.picture_size(), stage.picture_size(), device_);
  }

  // 5. To the host, once: the picture, the picture under each view, the records.
  download(picture, picture_views ? *picture_views : views, filters ? &*filters : nullptr, records,
           antiseg ? &*antiseg : nullptr, result);
  synchronize(device_);
  result.timing.seconds = seconds_since(stage_start);
  result.timing.peak_memory_mib = peak_memory_mib(device_);
  return result;
}

void SampleRunner::download(const torch::Tensor& picture, const ViewStack& views,
                            const FilterStack* filters, const DeviceRecords& records,
                            const AntiSegregation* antiseg, StageResult& result) const {
  result.image = picture.squeeze(0).to(torch::kCPU, torch::kFloat);
  // What each task's viewer sees: the picture through its view, or a factorized view's
  // rendering (the low pass from afar, the grayscale picture, ...).
  result.seen = (filters ? filters->render_each(picture) : views.apply_each(picture))
                    .to(torch::kCPU, torch::kFloat);
  result.records.weights = stacked_on_host(records.weights);
  result.records.scales = stacked_on_host(records.scales);
  result.records.clip_scores = stacked_on_host(records.scores);
  result.records.attention_maps = stacked_on_host(records.maps);
  if (antiseg && !antiseg->records().empty()) {
    std::vector<torch::Tensor> losses;
    for (const auto& r : antiseg->records()) losses.push_back(r.loss);
    result.records.antiseg_losses = stacked_on_host(losses);
  }
}

}  // namespace anagram::detail
