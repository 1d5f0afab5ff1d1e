// The bundled tiny model, loaded once per test binary on the CPU and shared by test suites.
#pragma once

#include <memory>

#include "anagram/models/bundle.h"
#include "anagram/models/noise_aware_clip.h"
#include "anagram/models/text_encoder.h"
#include "anagram/models/unet.h"

namespace anagram::testing {

struct TinyBundle {
  Manifest manifest;
  UNet unet;
  TextEncoder text;
  NoiseAwareClip clip;

  static const TinyBundle& get() {
    static const std::unique_ptr<TinyBundle> bundle = [] {
      Manifest m = read_manifest(ANAGRAM_DEFAULT_BUNDLE);
      return std::unique_ptr<TinyBundle>(new TinyBundle{
          m, UNet::load(m, m.stage(1), torch::kCPU, torch::kFloat),
          TextEncoder::load(m, torch::kCPU, torch::kFloat), NoiseAwareClip::load(m, torch::kCPU)});
    }();
    return *bundle;
  }
};

}  // namespace anagram::testing
