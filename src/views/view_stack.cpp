// ViewStack: N views at one size on one device, one gather per direction.
#include <string>
#include <vector>

#include "anagram/core/device.h"
#include "anagram/core/error.h"
#include "anagram/views/views.h"

namespace anagram {
namespace {

std::string shape_text(const torch::Tensor& t) {
  std::string text = "(";
  for (int64_t d = 0; d < t.dim(); ++d) text += (d ? "," : "") + std::to_string(t.size(d));
  return text + ")";
}

}  // namespace

ViewStack::ViewStack(std::vector<ViewPtr> views, int64_t height, int64_t width,
                     torch::Device device)
    : views_(std::move(views)), height_(height), width_(width), device_(device) {
  if (views_.empty()) {
    throw Error(ErrorKind::kInvalidArgument, "a view stack needs at least one view");
  }
  std::vector<torch::Tensor> forward, inverse;
  std::vector<float> signs;
  for (const auto& view : views_) {
    if (!view) throw Error(ErrorKind::kInvalidArgument, "a view stack got a null view");
    forward.push_back(view->source_index(height, width));  // checks the size
    inverse.push_back(view->inverse_source_index(height, width));
    signs.push_back(static_cast<float>(view->sign()));
    any_negative_ = any_negative_ || view->sign() < 0;
  }
  forward_ = torch::stack(forward).to(device_);
  inverse_ = torch::stack(inverse).to(device_);
  signs_ = torch::tensor(signs, torch::kFloat32).to(device_);
  const int64_t n = size();
  for (const auto dtype : {torch::kFloat32, torch::kFloat16, torch::kBFloat16, torch::kFloat64}) {
    signs_by_dtype_[dtype] = signs_.to(dtype).view({n, 1, 1, 1});
  }
}

const torch::Tensor& ViewStack::signs_as(c10::ScalarType dtype) const {
  const auto found = signs_by_dtype_.find(dtype);
  if (found == signs_by_dtype_.end()) {
    throw Error(ErrorKind::kInvalidArgument,
                std::string("view stack: unsupported dtype ") + c10::toString(dtype) +
                    " for a view with a sign (use a floating-point tensor)");
  }
  return found->second;
}

torch::Tensor ViewStack::gather(const torch::Tensor& src, const torch::Tensor& index) const {
  // src: (N or 1 expanded to N, M, H*W); index: (N, H*W) -> (N, M, H*W).
  const int64_t n = size();
  const int64_t m = src.size(1);
  return src.expand({n, m, height_ * width_})
      .gather(2, index.unsqueeze(1).expand({n, m, height_ * width_}));
}

torch::Tensor ViewStack::signed_result(const torch::Tensor& out, int64_t signed_channels) const {
  if (!any_negative_ || signed_channels == 0) return out;
  const int64_t n = size();
  const torch::Tensor& s = signs_as(out.scalar_type());  // (N,1,1,1)
  if (signed_channels == kAllChannels) {
    std::vector<int64_t> shape(static_cast<size_t>(out.dim()), 1);
    shape[0] = n;
    return out * s.view(shape);
  }
  const int64_t channels = out.dim() == 4 ? out.size(1) : 0;
  if (signed_channels < 0 || signed_channels > channels) {
    throw Error(ErrorKind::kInvalidArgument,
                "view stack: signed_channels " + std::to_string(signed_channels) +
                    " does not fit a tensor of shape " + shape_text(out));
  }
  if (signed_channels == channels) return out * s;
  return torch::cat({out.narrow(1, 0, signed_channels) * s,
                     out.narrow(1, signed_channels, channels - signed_channels)},
                    1);
}

torch::Tensor ViewStack::apply_each(const torch::Tensor& x) const {
  const bool ok_rank = x.dim() == 3 || (x.dim() == 4 && x.size(0) == 1);
  if (!ok_rank || x.size(-2) != height_ || x.size(-1) != width_) {
    throw Error(ErrorKind::kInvalidArgument,
                "view stack: expected (C," + std::to_string(height_) + "," +
                    std::to_string(width_) + ") or (1,C," + std::to_string(height_) + "," +
                    std::to_string(width_) + "), got " + shape_text(x));
  }
  if (!same_device(x.device(), device_)) {
    throw Error(ErrorKind::kInvalidArgument,
                "view stack on " + device_.str() + " got a tensor on " + x.device().str());
  }
  const int64_t channels = x.size(-3);
  const torch::Tensor src = x.reshape({1, channels, height_ * width_});
  const torch::Tensor out = gather(src, forward_).view({size(), channels, height_, width_});
  return signed_result(out, kAllChannels);
}

torch::Tensor ViewStack::invert_each(const torch::Tensor& y, int64_t signed_channels) const {
  const bool ok_rank = y.dim() == 3 || y.dim() == 4;
  if (!ok_rank || y.size(0) != size() || y.size(-2) != height_ || y.size(-1) != width_) {
    throw Error(ErrorKind::kInvalidArgument,
                "view stack of " + std::to_string(size()) + " views: expected (" +
                    std::to_string(size()) + ",C," + std::to_string(height_) + "," +
                    std::to_string(width_) + ") or (" + std::to_string(size()) + "," +
                    std::to_string(height_) + "," + std::to_string(width_) + "), got " +
                    shape_text(y));
  }
  if (!same_device(y.device(), device_)) {
    throw Error(ErrorKind::kInvalidArgument,
                "view stack on " + device_.str() + " got a tensor on " + y.device().str());
  }
  const int64_t middle = y.dim() == 4 ? y.size(1) : 1;
  const torch::Tensor src = y.reshape({size(), middle, height_ * width_});
  const torch::Tensor out = gather(src, inverse_).view(y.sizes());
  return signed_result(out, signed_channels);
}

}  // namespace anagram
