// anagram/views/views.h: the views of a visual anagram, as exact signed pixel permutations.
//
// A view v is an invertible map on images that keeps i.i.d. N(0,1) noise i.i.d. N(0,1): a
// permutation of the pixels of an HxW grid, possibly followed by a sign flip. Every channel is
// moved alike, so one view works on 3-channel images, 6-channel UNet outputs and stage II
// inputs, and 1-channel attention maps. For a source index map `src` (H*W entries):
//
//   out.flat[p] = sign * in.flat[src[p]]        (flat = the last two dims, row-major)
//
// Basic usage:
//
//   auto flip = anagram::make_view("flip");                 // upside down
//   torch::Tensor seen = flip->apply(image);                // (3,64,64) -> (3,64,64)
//   torch::Tensor back = flip->inverse(seen);               // == image, exactly
//
//   // The sampler's hot loop: all views at once, index tensors on the device.
//   anagram::ViewStack stack({anagram::make_view("identity"), anagram::make_view("rot180")},
//                            64, 64, torch::kCUDA);
//   torch::Tensor inputs = stack.apply_each(x);             // (1,3,64,64) -> (2,3,64,64)
//   torch::Tensor undone = stack.invert_each(out, 3);       // (2,6,64,64) -> (2,6,64,64)
//
// Views are made by name from a registry (`make_view`, `list_views`); names follow Geng et al.'s
// visual_anagrams code (github dangeng/visual_anagrams). Adding a view: one file in src/views/
// and one line in src/views/registry.cpp.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

namespace anagram {

// `signed_channels` value meaning "the sign applies to every channel" (the exact inverse).
inline constexpr int64_t kAllChannels = -1;

// The two kinds of views, which one request never mixes.
enum class ViewKind {
  kPermutation,  // moves the pixels of the model's input; the tasks' estimates are averaged
  kFactor,       // filters the noise estimate (views/factor.h); the estimates are summed
};
std::string to_string(ViewKind kind);  // "permutation" | "factor"

// One view. Immutable after construction; index tensors are computed once per (H, W, device)
// and cached (guarded by a mutex).
class View {
 public:
  explicit View(std::string arg = "") : arg_(std::move(arg)) {}
  virtual ~View() = default;
  View(const View&) = delete;
  View& operator=(const View&) = delete;

  // Canonical registry name, e.g. "rotate_180".
  virtual std::string name() const = 0;
  // One line for `anagram views` and logs, with the resolved parameters.
  virtual std::string description() const = 0;
  // The parameter exactly as the user gave it ("" when defaulted), for metadata.
  const std::string& arg() const { return arg_; }
  // The resolved parameters in the form make_view accepts, "" for a view without any,
  // e.g. "8,0" for a defaulted patch_permute.
  virtual std::string canonical_arg() const { return ""; }
  // "name" or "name:canonical_arg": make_view_from_spec(spec()) rebuilds this view exactly.
  std::string spec() const;
  // +1, or -1 for views that negate (negate).
  virtual int sign() const { return 1; }
  virtual ViewKind kind() const { return ViewKind::kPermutation; }

  // Throws Error(kInvalidArgument) with a clear message when the view is not defined on an
  // HxW grid (e.g. a 90-degree rotation of a non-square grid, patch_permute n not dividing H).
  virtual void check_size(int64_t height, int64_t width) const;
  bool supports_size(int64_t height, int64_t width) const;

  // Source index map for an HxW grid: (H*W) int64 on the CPU, a permutation of 0..H*W-1.
  // Checks the size first; cached.
  torch::Tensor source_index(int64_t height, int64_t width) const;
  // Source index map of the inverse view (the inverse permutation; the sign is the same).
  torch::Tensor inverse_source_index(int64_t height, int64_t width) const;

  // x: (..., H, W) of any dtype that can be negated, on any device -> same shape, dtype and
  // device. `signed_channels` says which channels (dim -3) the sign applies to:
  //   kAllChannels  every element (the exact view and its exact inverse);
  //   0             none (permutation only: attention maps, other sign-free quantities);
  //   k > 0         the first k channels of dim -3, e.g. 3 when undoing a view on the UNet's
  //                 (eps, variance) output: the published NegateView.inverse_view leaves the
  //                 variance channels alone. Needs x.dim() >= 3 and k <= x.size(-3).
  // Differentiable with respect to x.
  torch::Tensor apply(const torch::Tensor& x, int64_t signed_channels = kAllChannels) const;
  torch::Tensor inverse(const torch::Tensor& x, int64_t signed_channels = kAllChannels) const;

 protected:
  // The source index map for an HxW grid that passed check_size: (H*W) int64 CPU.
  // The base class checks that it is a permutation.
  virtual torch::Tensor compute_source_index(int64_t height, int64_t width) const = 0;

 private:
  struct Indices {
    torch::Tensor forward;  // (H*W) int64
    torch::Tensor inverse;  // (H*W) int64
  };
  Indices indices(int64_t height, int64_t width, const torch::Device& device) const;
  torch::Tensor gather_signed(const torch::Tensor& x, bool forward, int64_t signed_channels) const;

  std::string arg_;
  mutable std::mutex mutex_;
  // (H, W, device type, device index) -> index tensors on that device.
  mutable std::map<std::tuple<int64_t, int64_t, int, int>, Indices> cache_;
};

using ViewPtr = std::shared_ptr<const View>;

// N views at one grid size on one device, applied with one gather each way. The index tensors
// and signs live on the device: apply_each / invert_each make no host syncs and no host copies.
// Immutable after construction, so it may be shared between threads.
class ViewStack {
 public:
  // Throws Error(kInvalidArgument) when `views` is empty, holds a null view, or a view is not
  // defined at height x width.
  ViewStack(std::vector<ViewPtr> views, int64_t height, int64_t width, torch::Device device);

  int64_t size() const { return static_cast<int64_t>(views_.size()); }
  int64_t height() const { return height_; }
  int64_t width() const { return width_; }
  const torch::Device& device() const { return device_; }
  const std::vector<ViewPtr>& views() const { return views_; }

  // x: (C,H,W) or (1,C,H,W) on device() -> (N,C,H,W), entry k = view k applied to x.
  // float16/bfloat16/float32/float64. Differentiable with respect to x.
  torch::Tensor apply_each(const torch::Tensor& x) const;
  // y: (N,C,H,W) or (N,H,W) on device() -> same shape, entry k = view k's inverse of y[k].
  // `signed_channels` as in View::inverse (dim 1 of a 4-d y): pass the noise channel count (3)
  // for UNet outputs to match the published negate view, 0 for attention maps.
  torch::Tensor invert_each(const torch::Tensor& y, int64_t signed_channels = kAllChannels) const;

  // (N, H*W) int64 on device(): forward_index()[k] is view k's source index map.
  const torch::Tensor& forward_index() const { return forward_; }
  // (N, H*W) int64 on device(): the inverse maps.
  const torch::Tensor& inverse_index() const { return inverse_; }
  // (N) float32 on device(), entries +1 or -1.
  const torch::Tensor& signs() const { return signs_; }

 private:
  torch::Tensor gather(const torch::Tensor& src, const torch::Tensor& index) const;
  torch::Tensor signed_result(const torch::Tensor& out, int64_t signed_channels) const;
  const torch::Tensor& signs_as(c10::ScalarType dtype) const;

  std::vector<ViewPtr> views_;
  int64_t height_;
  int64_t width_;
  torch::Device device_;
  torch::Tensor forward_;
  torch::Tensor inverse_;
  torch::Tensor signs_;
  bool any_negative_ = false;
  std::map<c10::ScalarType, torch::Tensor> signs_by_dtype_;  // (N,1,1,1) per float dtype
};

// What `anagram views` prints about one registered view.
struct ViewInfo {
  std::string name;                  // canonical name, e.g. "rotate_cw"
  std::vector<std::string> aliases;  // e.g. {"rot90", "cw"}
  std::string description;           // one line
  std::string arg_help;              // what the argument means; "" if the view takes none
  std::string arg_default;           // the default argument; "" if the view takes none
  ViewKind kind = ViewKind::kPermutation;
};

// Makes a view by canonical name or alias (case-insensitive, '-' is read as '_'). `arg` is the
// view's parameter ("" for its default). Throws Error(kInvalidArgument) for an unknown name
// (with a "did you mean '...'?" suggestion and the known names) or a malformed argument.
ViewPtr make_view(const std::string& name_or_alias, const std::string& arg = "");
// "name" or "name:arg", e.g. "patch_permute:4,7"; the inverse of View::spec().
ViewPtr make_view_from_spec(const std::string& spec);
// Every registered view, in registry order.
std::vector<ViewInfo> list_views();

// Whether the view on a (size * factor)^2 grid moves whole factor x factor blocks exactly as the
// view on a size^2 grid moves cells (a block may be turned or flipped as a whole), with no sign:
// then viewing the picture is the same view of a latent grid whose cells cover those blocks
// (stage III: 4x4 pixel blocks per latent cell). Decided from the two index maps, so every
// view, present or future, is checked the same way. False for factorized views and for sizes
// the view does not support.
bool moves_whole_blocks(const View& view, int64_t size, int64_t factor);

}  // namespace anagram
