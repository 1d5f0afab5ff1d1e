// anagram/models/vae_decoder.h: stage III's VAE decoder, latents -> pictures, whole or in tiles.
//
// Basic usage:
//   const anagram::StageEntry& upscaler = manifest.stage(3);
//   anagram::VaeDecoder vae = anagram::VaeDecoder::load(manifest, *upscaler.latent, device);
//   torch::Tensor picture = vae.decode(latents, anagram::VaeTiling::kAuto);  // (1, 3, 1024, 1024)
//
// Tiles follow diffusers' AutoencoderKL.tiled_decode (0.24.0) exactly: tiles of `tile` latent
// cells every tile * (1 - overlap) cells, each decoded on its own, then blended into its
// upper and left neighbours (already blended, in place) over overlap * tile * upscale pixels by
// a linear ramp and cropped. A tiled picture differs slightly from the whole one (the decoder
// sees less context and normalises each tile on its own); docs/stage3.md gives the measured
// difference. The decoder's mid-block self-attention over all latent cells costs (s^2)^2
// floats untiled: 16 GiB for a 1024 picture, which is why kAuto tiles large grids.
//
// Where tensors live: the decoder and its pictures on `device`, always float32 (a float16
// decoder overflows); latents from another device are refused.
#pragma once

#include <torch/script.h>

#include <memory>
#include <string>

#include "anagram/models/bundle.h"

namespace anagram {

enum class VaeTiling {
  kAuto,  // tile when the untiled decoder's attention would need over 1 GiB (grids over 128)
  kOn,    // tile whenever the grid is larger than one tile (diffusers' enable_tiling())
  kOff,   // decode whole (the published pipeline)
};
std::string vae_tiling_name(VaeTiling tiling);
VaeTiling parse_vae_tiling(const std::string& name);  // throws Error(kInvalidArgument)

class VaeDecoder {
 public:
  // Loads and checks the decoder file (docs/bundle.md), probes it on a small grid.
  static VaeDecoder load(const Manifest& manifest, const LatentEntry& entry,
                         const c10::Device& device);

  // latents: (B, C, s, s) on the decoder's device, as the stage's UNet samples them (the
  // decoder divides by the scaling factor itself). Returns (B, 3, upscale s, upscale s)
  // float32 in about [-1, 1].
  torch::Tensor decode(const torch::Tensor& latents, VaeTiling tiling) const;
  // Whether decode() tiles a grid of side `size` under `tiling`.
  bool tiles(int64_t size, VaeTiling tiling) const;

  const c10::Device& device() const { return device_; }

 private:
  VaeDecoder(std::shared_ptr<torch::jit::Module> module, LatentEntry entry, c10::Device device)
      : module_(std::move(module)), entry_(std::move(entry)), device_(device) {}
  torch::Tensor whole(const torch::Tensor& latents) const;
  torch::Tensor tiled(const torch::Tensor& latents) const;

  std::shared_ptr<torch::jit::Module> module_;
  LatentEntry entry_;
  c10::Device device_;
};

}  // namespace anagram
