// anagram/unet.h: the bundle's TorchScript UNet as a denoiser the samplers can call.
//
// Basic usage:
//   anagram::UNet unet = anagram::UNet::load(manifest, device, dtype);
//   torch::Tensor out = unet(x, /*t=*/957, text_states);  // (B, 6, S, S) float32
#pragma once

#include <torch/script.h>

#include <memory>

#include "anagram/bundle.h"

namespace anagram {

class UNet {
 public:
  // Loads BUNDLE/unet.pt onto `device` in `dtype` and runs one probe call to check that its
  // output shape matches the manifest. Throws anagram::Error(kBundle) otherwise.
  static UNet load(const Manifest& manifest, const c10::Device& device, c10::ScalarType dtype);

  // x: (B, in_channels, S, S) any float dtype on the UNet's device; timestep: DDPM timestep;
  // text_states: (B, 77, D). Returns (B, out_channels, S, S) float32: [epsilon, variance].
  torch::Tensor operator()(const torch::Tensor& x, int64_t timestep,
                           const torch::Tensor& text_states) const;

  struct OutputWithAttention {
    torch::Tensor output;     // (B, out_channels, S, S) float32
    torch::Tensor attention;  // (L, B, R*R, 77) float32: probabilities summed over heads
  };
  // Same call through forward_with_attention: also returns the cross-attention probabilities
  // of the layers at the manifest's query resolution R. Differentiable w.r.t. x.
  OutputWithAttention forward_with_attention(const torch::Tensor& x, int64_t timestep,
                                             const torch::Tensor& text_states) const;

  const c10::Device& device() const { return device_; }
  c10::ScalarType dtype() const { return dtype_; }

 private:
  UNet(std::shared_ptr<torch::jit::Module> module, c10::Device device, c10::ScalarType dtype)
      : module_(std::move(module)), device_(device), dtype_(dtype) {}
  std::vector<c10::IValue> inputs(const torch::Tensor& x, int64_t timestep,
                                  const torch::Tensor& text_states) const;

  std::shared_ptr<torch::jit::Module> module_;  // shared: copies of UNet share the weights
  c10::Device device_;
  c10::ScalarType dtype_;
};

}  // namespace anagram
