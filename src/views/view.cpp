// View base class: size checks, cached index maps, apply / inverse.
#include <string>
#include <vector>

#include "anagram/core/error.h"
#include "anagram/views/views.h"

namespace anagram {
namespace {

// Throws kRuntime unless `index` ((n) int64 CPU) is a permutation of 0..n-1: a safety net
// for new views, run once per size.
void check_permutation(const std::string& view, const torch::Tensor& index, int64_t n) {
  if (index.dim() != 1 || index.size(0) != n || index.scalar_type() != torch::kInt64 ||
      !index.device().is_cpu()) {
    throw Error(ErrorKind::kRuntime, "view '" + view + "' made an index map of the wrong shape");
  }
  std::vector<char> seen(static_cast<size_t>(n), 0);
  const int64_t* data = index.data_ptr<int64_t>();
  for (int64_t p = 0; p < n; ++p) {
    const int64_t s = data[p];
    if (s < 0 || s >= n || seen[static_cast<size_t>(s)]) {
      throw Error(ErrorKind::kRuntime, "view '" + view +
                                           "' made an index map that is not a "
                                           "permutation (entry " +
                                           std::to_string(p) + ")");
    }
    seen[static_cast<size_t>(s)] = 1;
  }
}

torch::Tensor invert_permutation(const torch::Tensor& index) {
  torch::Tensor inverse = torch::empty_like(index);
  inverse.index_put_({index}, torch::arange(index.size(0), index.options()));
  return inverse;
}

}  // namespace

std::string View::spec() const {
  const std::string resolved = canonical_arg();
  return resolved.empty() ? name() : name() + ":" + resolved;
}

void View::check_size(int64_t height, int64_t width) const {
  if (height < 1 || width < 1) {
    throw Error(ErrorKind::kInvalidArgument, "view '" + name() + "': image size " +
                                                 std::to_string(height) + "x" +
                                                 std::to_string(width) + " is empty");
  }
}

bool View::supports_size(int64_t height, int64_t width) const {
  try {
    check_size(height, width);
    return true;
  } catch (const Error&) {
    return false;
  }
}

View::Indices View::indices(int64_t height, int64_t width, const torch::Device& device) const {
  const auto key = std::make_tuple(height, width, static_cast<int>(device.type()),
                                   static_cast<int>(device.index()));
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = cache_.find(key);
  if (found != cache_.end()) return found->second;

  Indices result;
  const auto cpu_key = std::make_tuple(height, width, static_cast<int>(torch::kCPU), -1);
  auto cpu = cache_.find(cpu_key);
  if (cpu != cache_.end()) {
    result = cpu->second;
  } else {
    check_size(height, width);
    result.forward = compute_source_index(height, width).contiguous();
    check_permutation(name(), result.forward, height * width);
    result.inverse = invert_permutation(result.forward);
    cache_[cpu_key] = result;
  }
  if (!device.is_cpu()) {
    result.forward = result.forward.to(device);
    result.inverse = result.inverse.to(device);
    cache_[key] = result;
  }
  return result;
}

torch::Tensor View::source_index(int64_t height, int64_t width) const {
  return indices(height, width, torch::kCPU).forward;
}

torch::Tensor View::inverse_source_index(int64_t height, int64_t width) const {
  return indices(height, width, torch::kCPU).inverse;
}

torch::Tensor View::gather_signed(const torch::Tensor& x, bool forward,
                                  int64_t signed_channels) const {
  if (x.dim() < 2) {
    throw Error(ErrorKind::kInvalidArgument,
                "view '" + name() + "': expected a tensor (..., H, W)");
  }
  const int64_t height = x.size(-2);
  const int64_t width = x.size(-1);
  const Indices idx = indices(height, width, x.device());
  const torch::Tensor out =
      x.flatten(-2, -1).index_select(-1, forward ? idx.forward : idx.inverse).view(x.sizes());
  if (sign() > 0 || signed_channels == 0) return out;
  if (signed_channels == kAllChannels) return -out;
  const int64_t channels = x.dim() >= 3 ? x.size(-3) : 0;
  if (signed_channels < 0 || signed_channels > channels) {
    throw Error(ErrorKind::kInvalidArgument,
                "view '" + name() + "': signed_channels " + std::to_string(signed_channels) +
                    " does not fit a tensor with " + std::to_string(channels) + " channels");
  }
  if (signed_channels == channels) return -out;
  return torch::cat({-out.narrow(-3, 0, signed_channels),
                     out.narrow(-3, signed_channels, channels - signed_channels)},
                    -3);
}

torch::Tensor View::apply(const torch::Tensor& x, int64_t signed_channels) const {
  return gather_signed(x, /*forward=*/true, signed_channels);
}

torch::Tensor View::inverse(const torch::Tensor& x, int64_t signed_channels) const {
  return gather_signed(x, /*forward=*/false, signed_channels);
}

}  // namespace anagram
