// Private: the linear filters of the factorized views (src/views/hybrid.cpp, motion.cpp, ...).
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>

namespace anagram::views_detail {

// The published filters are sized for 64x64 pictures and scaled by S/64, kept odd:
// 2 * floor(size_at_64 * S / 64 / 2) + 1 (33 -> 33, 133 and 529 at 64, 256 and 1024).
int64_t odd_kernel_at(double size_at_64, int64_t side);

// Ref: torchvision 0.14 transforms.functional.gaussian_blur on tensors: the 1-d kernel
// exp(-0.5 (x / sigma)^2) on linspace(-(k-1)/2, (k-1)/2, k), normalised, its outer product
// applied per channel after reflect padding by k/2. Here as two 1-d passes (the same sums in
// another order) so that 256x256 pictures stay cheap.
class GaussianBlur {
 public:
  GaussianBlur(int64_t kernel_size, double sigma, const torch::Device& device);
  // x: (B, C, S, S) on the device; needs kernel_size / 2 < S (reflect padding).
  torch::Tensor operator()(const torch::Tensor& x) const;
  int64_t kernel_size() const { return kernel_size_; }

 private:
  int64_t kernel_size_;
  torch::Tensor vertical_;    // (1, 1, k, 1) float32 on the device
  torch::Tensor horizontal_;  // (1, 1, 1, k)
};

// Ref: visual_anagrams views/view_motion.py: the mean along the main diagonal, a size x size
// kernel eye(size) / size applied per channel with zero padding size / 2.
torch::Tensor motion_blur(const torch::Tensor& x, int64_t size);

// Throws Error(kInvalidArgument) naming the view when a kernel does not fit the picture.
void check_kernel_fits(const std::string& view, int64_t kernel_size, int64_t side);

}  // namespace anagram::views_detail
