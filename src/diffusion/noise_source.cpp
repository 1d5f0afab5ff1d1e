#include "anagram/diffusion/noise_source.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Functions.h>

namespace anagram {

NoiseSource::NoiseSource(uint64_t seed, c10::ScalarType draw_dtype, c10::Device device)
    : seed_(seed),
      generator_(at::detail::createCPUGenerator(seed)),
      draw_dtype_(draw_dtype),
      device_(device) {}

torch::Tensor NoiseSource::next(at::IntArrayRef shape) {
  const auto drawn = at::randn(shape, generator_, torch::dtype(draw_dtype_));
  return drawn.to(device_, torch::kFloat);
}

}  // namespace anagram
