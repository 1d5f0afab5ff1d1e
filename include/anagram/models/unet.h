// anagram/models/unet.h: a stage's TorchScript UNet as a denoiser the samplers can call.
//
// Basic usage:
//   anagram::UNet unet = anagram::UNet::load(manifest, manifest.stage(1), device, dtype);
//   torch::Tensor out = unet(x, /*t=*/957, text_states);  // (B, 6, S, S) float32
//   // stage II: x has 6 channels ([x, upscaled]) and the noise level is the class label
//   torch::Tensor out2 = stage2(x6, t, text_states, noise_levels);
//   // stage III: x has 7 channels ([4 latent channels, the noised 256 picture]), out is v
//
// Where tensors live: on the UNet's device. Inputs from another device are refused with one
// line, not copied: a copy here would hide a device mistake as a per-step host round trip.
// Inputs are converted to the bundle's dtype; outputs come back as float32.
#pragma once

#include <torch/script.h>

#include <memory>

#include "anagram/models/bundle.h"

namespace anagram {

class UNet {
 public:
  // Loads the stage's UNet file onto `device` in `dtype` (checking its code: see
  // docs/bundle.md) and runs one probe call to check that its output shape matches the
  // manifest. Throws anagram::Error(kBundle) otherwise.
  static UNet load(const Manifest& manifest, const StageEntry& stage, const c10::Device& device,
                   c10::ScalarType dtype);

  // x: (B, in_channels, S, S) any float dtype on the UNet's device; timestep: DDPM timestep;
  // text_states: (B, 77, D); class_labels: (B) int64 for a UNet that takes them (stage II's and
  // III's noise level), else undefined. Returns (B, out_channels, S, S) float32: IF's
  // [epsilon, variance], or stage III's v.
  torch::Tensor operator()(const torch::Tensor& x, int64_t timestep,
                           const torch::Tensor& text_states,
                           const torch::Tensor& class_labels = {}) const;

  struct OutputWithAttention {
    torch::Tensor output;     // (B, out_channels, S, S) float32
    torch::Tensor attention;  // (L, B, R*R, 77) float32: probabilities summed over heads
  };
  // Same call through forward_with_attention (stage I): also returns the cross-attention
  // probabilities of the layers at the manifest's query resolution R. Differentiable w.r.t. x.
  OutputWithAttention forward_with_attention(const torch::Tensor& x, int64_t timestep,
                                             const torch::Tensor& text_states) const;

  const c10::Device& device() const { return device_; }
  c10::ScalarType dtype() const { return dtype_; }
  bool takes_class_labels() const { return class_labels_; }

 private:
  UNet(std::shared_ptr<torch::jit::Module> module, c10::Device device, c10::ScalarType dtype,
       bool class_labels)
      : module_(std::move(module)), device_(device), dtype_(dtype), class_labels_(class_labels) {}
  std::vector<c10::IValue> inputs(const torch::Tensor& x, int64_t timestep,
                                  const torch::Tensor& text_states,
                                  const torch::Tensor& class_labels) const;

  std::shared_ptr<torch::jit::Module> module_;  // shared: copies of UNet share the weights
  c10::Device device_;
  c10::ScalarType dtype_;
  bool class_labels_;
};

}  // namespace anagram
