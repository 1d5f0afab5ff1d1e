// anagram/diffusion/noise_source.h: all of a sample's randomness, in the published pipelines'
// order.
//
// The diffusers/visual_anagrams pipelines draw every noise tensor from one CPU generator
// seeded with the seed: first the initial noise, then each scheduler step's noise, in order.
// Drawing the same shapes in the same order from a CPU generator and only then moving them to
// the device gives the same picture on every device (docs/algorithm.md, "Randomness").
//
// Basic usage:
//   anagram::NoiseSource noise(seed, torch::kFloat, device);
//   torch::Tensor x = noise.next({1, 3, 64, 64});  // drawn on the CPU, returned on `device`
//
// Where tensors live: drawn on the host, returned on the source's device (its one crossing).
#pragma once

#include <ATen/core/Generator.h>
#include <torch/types.h>

#include <cstdint>

namespace anagram {

class NoiseSource {
 public:
  // draw_dtype: the dtype the reference pipeline draws in (its UNet dtype): CPU normal
  // sampling gives different numbers for float16 and float32, so it matters for matching.
  NoiseSource(uint64_t seed, c10::ScalarType draw_dtype, c10::Device device);

  // N(0,1) noise of `shape`, drawn on the CPU, returned as float32 on the device.
  torch::Tensor next(at::IntArrayRef shape);

  uint64_t seed() const { return seed_; }

 private:
  uint64_t seed_;
  at::Generator generator_;
  c10::ScalarType draw_dtype_;
  c10::Device device_;
};

}  // namespace anagram
