#include "anagram/models/vae_decoder.h"

#include <vector>

#include "anagram/core/device.h"
#include "anagram/core/error.h"
#include "models/script_module.h"

namespace anagram {
namespace {

// Grids up to this side decode whole under kAuto: (128^2)^2 float32 attention scores = 1 GiB.
constexpr int64_t kAutoWholeSide = 128;

// diffusers' blend_v / blend_h: the first `extent` rows (columns) of b become a linear ramp from
// a's last rows (columns) to b's own, row by row with host scalars as diffusers computes them.
void blend(const torch::Tensor& a, torch::Tensor& b, int64_t extent, int64_t dim) {
  extent = std::min({a.size(dim), b.size(dim), extent});
  for (int64_t y = 0; y < extent; ++y) {
    const double w = static_cast<double>(y) / static_cast<double>(extent);
    b.select(dim, y).copy_(a.select(dim, a.size(dim) - extent + y) * (1 - w) +
                           b.select(dim, y) * w);
  }
}

}  // namespace

std::string vae_tiling_name(VaeTiling tiling) {
  switch (tiling) {
    case VaeTiling::kAuto:
      return "auto";
    case VaeTiling::kOn:
      return "on";
    case VaeTiling::kOff:
      return "off";
  }
  return "auto";
}

VaeTiling parse_vae_tiling(const std::string& name) {
  for (VaeTiling t : {VaeTiling::kAuto, VaeTiling::kOn, VaeTiling::kOff}) {
    if (name == vae_tiling_name(t)) return t;
  }
  throw Error(ErrorKind::kInvalidArgument, "vae_tiling",
              "must be auto, on or off, got '" + name + "'");
}

VaeDecoder VaeDecoder::load(const Manifest& manifest, const LatentEntry& entry,
                            const c10::Device& device) {
  const detail::ModuleFile file{manifest.dir.string(), entry.decoder_file, "the VAE decoder"};
  VaeDecoder decoder(detail::load_script_module(file, device, torch::kFloat), entry, device);
  const int64_t side = std::min<int64_t>(entry.size, 8);
  auto generator = at::detail::createCPUGenerator(0);
  const auto probe = at::randn({1, entry.channels, side, side}, generator).to(device);
  const torch::Tensor out = detail::run_probe(file, [&] { return decoder.whole(probe); });
  detail::expect_shape(file, out, {1, 3, side * entry.upscale, side * entry.upscale});
  return decoder;
}

bool VaeDecoder::tiles(int64_t size, VaeTiling tiling) const {
  switch (tiling) {
    case VaeTiling::kOff:
      return false;
    case VaeTiling::kOn:
      return size > entry_.tile;
    case VaeTiling::kAuto:
      return size > kAutoWholeSide && size > entry_.tile;
  }
  return false;
}

torch::Tensor VaeDecoder::decode(const torch::Tensor& latents, VaeTiling tiling) const {
  if (!same_device(latents.device(), device_)) {
    throw Error(ErrorKind::kRuntime, "the VAE decoder on " + device_.str() + " got latents on " +
                                         latents.device().str());
  }
  if (latents.dim() != 4 || latents.size(1) != entry_.channels) {
    throw Error(ErrorKind::kRuntime,
                "the VAE decoder takes (B, " + std::to_string(entry_.channels) + ", s, s) latents");
  }
  torch::NoGradGuard no_grad;
  const torch::Tensor z = latents.to(torch::kFloat);
  return tiles(std::max(z.size(2), z.size(3)), tiling) ? tiled(z) : whole(z);
}

torch::Tensor VaeDecoder::whole(const torch::Tensor& latents) const {
  const detail::ModelWarnings warnings;
  return module_->forward({latents}).toTensor().to(torch::kFloat);
}

torch::Tensor VaeDecoder::tiled(const torch::Tensor& z) const {
  // Ref: diffusers 0.24.0 AutoencoderKL.tiled_decode, with tile_overlap_factor 0.25.
  const int64_t tile = entry_.tile;
  const int64_t tile_pixels = tile * entry_.upscale;
  const auto step = static_cast<int64_t>(static_cast<double>(tile) * (1 - entry_.tile_overlap));
  const auto extent = static_cast<int64_t>(static_cast<double>(tile_pixels) * entry_.tile_overlap);
  const int64_t keep = tile_pixels - extent;
  std::vector<std::vector<torch::Tensor>> rows;
  for (int64_t i = 0; i < z.size(2); i += step) {
    std::vector<torch::Tensor> row;
    for (int64_t j = 0; j < z.size(3); j += step) {
      const torch::Tensor piece = z.slice(2, i, std::min(i + tile, z.size(2)))
                                      .slice(3, j, std::min(j + tile, z.size(3)))
                                      .contiguous();
      row.push_back(whole(piece));
    }
    rows.push_back(std::move(row));
  }
  std::vector<torch::Tensor> bands;
  for (size_t i = 0; i < rows.size(); ++i) {
    std::vector<torch::Tensor> kept;
    for (size_t j = 0; j < rows[i].size(); ++j) {
      torch::Tensor& piece = rows[i][j];
      if (i > 0) blend(rows[i - 1][j], piece, extent, 2);
      if (j > 0) blend(rows[i][j - 1], piece, extent, 3);
      kept.push_back(piece.slice(2, 0, keep).slice(3, 0, keep));
    }
    bands.push_back(torch::cat(kept, 3));
  }
  return torch::cat(bands, 2);
}

}  // namespace anagram
