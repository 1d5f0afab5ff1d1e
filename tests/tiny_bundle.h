// The bundled tiny model, loaded once per test binary on the CPU and shared by test suites.
#pragma once

#include <memory>

#include "anagram/bundle.h"
#include "anagram/clip_scorer.h"
#include "anagram/text_encoder.h"
#include "anagram/unet.h"

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
          m, UNet::load(m, torch::kCPU, torch::kFloat),
          TextEncoder::load(m, torch::kCPU, torch::kFloat), NoiseAwareClip::load(m, torch::kCPU)});
    }();
    return *bundle;
  }
};

}  // namespace anagram::testing
