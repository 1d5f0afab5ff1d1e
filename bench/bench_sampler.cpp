// Benchmark of the stage I sampler on a bundle: seconds per step, the UNet's share of a step,
// and peak memory. Prints figures; asserts nothing (targets live in the issue, not in tests).
//
// Usage: anagram_bench [--bundle DIR] [--device cpu|cuda] [--steps N] [--views N] [--repeat R]
#include <sys/resource.h>
#include <torch/cuda.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include "anagram/bundle.h"
#include "anagram/combiner.h"
#include "anagram/ddpm_scheduler.h"
#include "anagram/device.h"
#include "anagram/error.h"
#include "anagram/generate.h"
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
    const anagram::MeanCombiner combiner;
    const auto scheduler = anagram::DDPMSchedulerConfig::from_json(manifest.scheduler);
    anagram::StageOneSampler sampler(timed_unet, scheduler, stack, conditioning, combiner,
                                     manifest.image_channels, manifest.image_size);
    anagram::SamplerParams params;
    params.steps = steps;

    {  // Warm-up run: first calls pay for TorchScript optimisation and allocations.
      anagram::NoiseSource noise(0, manifest.dtype, device);
      sampler.sample(params, noise);
    }
    unet_time = {};
    unet_calls = 0;
    sync(device);
    const auto start = Clock::now();
    for (int r = 0; r < repeat; ++r) {
      anagram::NoiseSource noise(static_cast<uint64_t>(r), manifest.dtype, device);
      sampler.sample(params, noise);
    }
    sync(device);
    const double total_s = seconds(Clock::now() - start);
    const double step_s = total_s / (repeat * steps);
    const double unet_s = seconds(unet_time) / unet_calls;

    std::printf("bundle              %s (%s)\n", manifest.name.c_str(), bundle.c_str());
    std::printf("device              %s, %s, %d threads\n", device.str().c_str(),
                anagram::dtype_name(manifest.dtype).c_str(), at::get_num_threads());
    std::printf("views               %d (UNet batch %d)\n", num_views, 2 * num_views);
    std::printf("load                %.3f s\n", load_s);
    std::printf("seconds per step    %.4f  (%d runs x %d steps)\n", step_s, repeat, steps);
    std::printf("UNet call per step  %.4f s\n", unet_s);
    std::printf("outside the UNet    %.1f %% of a step\n", 100.0 * (step_s - unet_s) / step_s);
    std::printf("peak host memory    %.1f MiB (max RSS)\n", peak_rss_mib());
    return 0;
  } catch (const anagram::Error& e) {
    std::fprintf(stderr, "anagram_bench: %s\n", e.what());
    return e.exit_code();
  }
}
