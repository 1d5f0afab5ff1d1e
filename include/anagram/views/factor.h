// anagram/views/factor.h: factorized views (Geng, Park, Owens, "Factorized Diffusion", ECCV
// 2024): the model sees the picture unchanged, and each task's noise estimate passes through a
// linear filter; the filtered estimates are summed. Filters that sum to the identity (a low
// pass and its complement, grayscale and colour, a motion blur and its residual, three bands)
// split one picture into components, each drawn for its own prompt: a hybrid image reads as
// one thing from afar and another up close.
//
// Basic usage:
//   auto low = anagram::make_view("low_pass"), high = anagram::make_view("high_pass");
//   anagram::FilterStack filters({low, high}, 64, device);
//   torch::Tensor parts = filters.apply_each(eps);       // (2,3,64,64): low(eps[0]), high(eps[1])
//   torch::Tensor seen = filters.render_each(image);      // from afar, and up close
//
// Sizes: the published filters are defined at 64x64 and scaled with the picture (kernel size
// and sigma times S/64, the kernel kept odd: 33 at 64, 133 at 256, 529 at 1024), which this
// generalises to any S where the kernel fits (S = 32: 17).
//
// Where tensors live: a FilterStack's kernels on its device; inputs must be there already.
#pragma once

#include <torch/types.h>

#include <memory>
#include <vector>

#include "anagram/views/views.h"

namespace anagram {

// One factorized view's filter at one picture size, with its kernels on one device.
class Filter {
 public:
  virtual ~Filter() = default;
  // x: (B, C, S, S) float on the filter's device -> f(x), every channel filtered alike.
  virtual torch::Tensor apply(const torch::Tensor& x) const = 0;
  // What a viewer sees of a picture (B, C, S, S): the low pass of a hybrid from afar, the
  // grayscale picture, the motion-blurred one; the picture itself for the views seen as is.
  virtual torch::Tensor render(const torch::Tensor& image) const { return image; }
};

class FactorView : public View {
 public:
  using View::View;
  ViewKind kind() const override { return ViewKind::kFactor; }
  // Throws Error(kInvalidArgument) naming the view when its filter does not fit a size x size
  // picture (its kernel). The view's input side, the identity, fits every size (check_size).
  virtual void check_filter_size(int64_t size) const { (void)size; }
  // The filter at `size` x `size` on `device` (check_filter_size first).
  virtual std::unique_ptr<const Filter> filter_at(int64_t size,
                                                  const torch::Device& device) const = 0;

 protected:
  // The model's input is not changed.
  torch::Tensor compute_source_index(int64_t height, int64_t width) const override;
};

// N factorized views at one size on one device. Immutable; may be shared between threads.
class FilterStack {
 public:
  // Throws Error(kInvalidArgument) for an empty list, a view that is not a FactorView, or a
  // filter that does not fit size x size.
  FilterStack(const std::vector<ViewPtr>& views, int64_t size, torch::Device device);

  int64_t size() const { return static_cast<int64_t>(filters_.size()); }
  // eps: (N, C, S, S) on the device -> (N, C, S, S), entry k = filter k of eps[k].
  torch::Tensor apply_each(const torch::Tensor& eps) const;
  // image: (C, S, S) or (1, C, S, S) on the device -> (N, C, S, S), entry k = view k's rendering.
  torch::Tensor render_each(const torch::Tensor& image) const;

 private:
  std::vector<std::unique_ptr<const Filter>> filters_;
  int64_t side_;
  torch::Device device_;
};

// Whether the views' filters sum to the identity at `size` (checked numerically on the CPU,
// to float tolerance): then the sampled picture is exactly the sum of its components.
bool filters_sum_to_identity(const std::vector<ViewPtr>& views, int64_t size);

}  // namespace anagram
