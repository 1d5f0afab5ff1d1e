// Benchmark of the stage I sampler on a bundle: seconds per step with the baseline and with the
// method (mtl), the UNet's share of a step, the anti-segregation step's cost relative to a plain
// step's UNet call, and peak memory. Prints figures; asserts nothing.
//
// Usage: anagram_bench [--bundle DIR] [--device cpu|cuda] [--steps N] [--views N] [--repeat R]
#include <sys/resource.h>
#include <torch/cuda.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include "anagram/antiseg.h"
#include "anagram/bundle.h"
#include "anagram/clip_scorer.h"
#include "anagram/combiner.h"
#include "anagram/ddpm_scheduler.h"
#include "anagram/device.h"
#include "anagram/error.h"
#include "anagram/generate.h"
#include "anagram/mtl_combiner.h"
#include "anagram/noise_source.h"
#include "anagram/sampler.h"
#include "anagram/text_encoder.h"
#include "anagram/unet.h"
#include "anagram/views.h"

using Clock = std::chrono::steady_clock;

namespace {

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

void sync(const c10::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index());
}

double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

}  // namespace

int main(int argc, char** argv) {
  std::string bundle = anagram::default_bundle_path(), device_name = "cpu";
  int steps = 10, num_views = 2, repeat = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i], value = argv[i + 1];
    if (key == "--bundle")
      bundle = value;
    else if (key == "--device")
      device_name = value;
    else if (key == "--steps")
      steps = std::stoi(value);
    else if (key == "--views")
      num_views = std::stoi(value);
    else if (key == "--repeat")
      repeat = std::stoi(value);
    else {
      std::fprintf(stderr, "unknown option %s\n", key.c_str());
      return 2;
    }
  }
  try {
    const c10::Device device = anagram::parse_device(device_name);
    const anagram::Manifest manifest = anagram::read_manifest(bundle);
    const auto load_start = Clock::now();
    const anagram::UNet unet = anagram::UNet::load(manifest, device, manifest.dtype);
    const anagram::TextEncoder text = anagram::TextEncoder::load(manifest, device, manifest.dtype);
    const double load_s = seconds(Clock::now() - load_start);

    const char* names[] = {"identity", "rotate_180", "flip", "rotate_cw"};
    std::vector<anagram::ViewPtr> views;
    std::vector<std::string> prompts;
    for (int k = 0; k < num_views; ++k) {
      views.push_back(anagram::make_view(names[k % 4]));
      prompts.push_back("prompt " + std::to_string(k));
    }
    const anagram::ViewStack stack(views, manifest.image_size, manifest.image_size, device);
    anagram::Conditioning conditioning{text.encode({""}), text.encode(prompts)};

    // The UNet call timed on its own (synchronised, for the benchmark only).
    Clock::duration unet_time{};
    int unet_calls = 0;
    anagram::Denoiser timed_unet = [&](const torch::Tensor& x, int64_t t, const torch::Tensor& s) {
      sync(device);
      const auto start = Clock::now();
      torch::Tensor out = unet(x, t, s);
      sync(device);
      unet_time += Clock::now() - start;
      ++unet_calls;
      return out;
    };
    const auto scheduler = anagram::DDPMSchedulerConfig::from_json(manifest.scheduler);
    anagram::SamplerParams params;
    params.steps = steps;

    // Times `repeat` runs of a sampler after one warm-up run (the first calls pay for
    // TorchScript's optimisation and allocations). Returns seconds per step.
    Clock::duration hook_time{};
    int hook_calls = 0;
    auto time_runs = [&](anagram::StageOneSampler& sampler) {
      {
        anagram::NoiseSource noise(0, manifest.dtype, device);
        sampler.sample(params, noise);
      }
      unet_time = {};
      unet_calls = 0;
      hook_time = {};
      hook_calls = 0;
      sync(device);
      const auto start = Clock::now();
      for (int r = 0; r < repeat; ++r) {
        anagram::NoiseSource noise(static_cast<uint64_t>(r), manifest.dtype, device);
        sampler.sample(params, noise);
      }
      sync(device);
      return seconds(Clock::now() - start) / (repeat * steps);
    };

    const anagram::MeanCombiner mean;
    anagram::StageOneSampler baseline(timed_unet, scheduler, stack, conditioning, mean,
                                      manifest.image_channels, manifest.image_size);
    const double baseline_step_s = time_runs(baseline);
    const double unet_s = seconds(unet_time) / unet_calls;

    // The method: balancing (if the bundle has a CLIP), rectification, anti-segregation.
    anagram::MtlOptions mtl;
    mtl.balance = manifest.clip.has_value();
    std::unique_ptr<anagram::NoiseAwareClip> clip;
    torch::Tensor clip_text;
    if (mtl.balance) {
      clip = std::make_unique<anagram::NoiseAwareClip>(
          anagram::NoiseAwareClip::load(manifest, device));
      clip_text = clip->embed_texts(prompts);
    }
    const anagram::MultiTaskCombiner combiner(mtl, clip.get(), clip_text);
    const int64_t r = manifest.unet.attention.query_resolution;
    const anagram::ViewStack map_stack(views, r, r, device);
    std::vector<std::vector<int64_t>> concepts;
    for (const auto& prompt : prompts)
      concepts.push_back(anagram::find_concept_tokens(text.tokenizer(), prompt));
    anagram::AntiSegregation antiseg(
        unet, stack, map_stack, conditioning.prompts,
        anagram::concept_mask(concepts, manifest.tokenizer.max_length).to(device),
        anagram::AntiSegOptions{}, steps);
    anagram::StageOneSampler method(timed_unet, scheduler, stack, conditioning, combiner,
                                    manifest.image_channels, manifest.image_size);
    method.set_post_step_hook([&](const torch::Tensor& x, int i, int64_t t) {
      sync(device);
      const auto start = Clock::now();
      torch::Tensor out = antiseg(x, i, t);
      sync(device);
      if (i < antiseg.steps()) {
        hook_time += Clock::now() - start;
        ++hook_calls;
      }
      return out;
    });
    const double method_step_s = time_runs(method);
    const double hook_s = hook_calls ? seconds(hook_time) / hook_calls : 0.0;

    std::printf("bundle              %s (%s)\n", manifest.name.c_str(), bundle.c_str());
    std::printf("device              %s, %s, %d threads\n", device.str().c_str(),
                anagram::dtype_name(manifest.dtype).c_str(), at::get_num_threads());
    std::printf("views               %d (UNet batch %d), %d runs x %d steps\n", num_views,
                2 * num_views, repeat, steps);
    std::printf("load                %.3f s\n", load_s);
    std::printf("baseline            %.4f s per step\n", baseline_step_s);
    std::printf("  UNet call         %.4f s per step\n", unet_s);
    std::printf("  outside the UNet  %.1f %% of a step\n",
                100.0 * (baseline_step_s - unet_s) / baseline_step_s);
    std::printf("method (mtl)        %.4f s per step (%.2fx baseline; balancing %s)\n",
                method_step_s, method_step_s / baseline_step_s,
                mtl.balance ? "on" : "off: no CLIP");
    std::printf("  anti-segregation  %.4f s per optimised step = %.2fx a plain step's UNet call\n",
                hook_s, hook_s / unet_s);
    std::printf("peak host memory    %.1f MiB (max RSS)\n", peak_rss_mib());
    return 0;
  } catch (const anagram::Error& e) {
    std::fprintf(stderr, "anagram_bench: %s\n", e.what());
    return e.exit_code();
  }
}
