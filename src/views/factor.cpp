// The factorized views' common parts: FilterStack, the filters, the identity check.
#include "anagram/views/factor.h"

#include <torch/nn/functional/conv.h>
#include <torch/nn/functional/padding.h>

#include <cmath>

#include "anagram/core/device.h"
#include "anagram/core/error.h"
#include "views/filters.h"

namespace anagram {

namespace F = torch::nn::functional;

std::string to_string(ViewKind kind) {
  return kind == ViewKind::kFactor ? "factor" : "permutation";
}

torch::Tensor FactorView::compute_source_index(int64_t height, int64_t width) const {
  return torch::arange(height * width, torch::kInt64);
}

FilterStack::FilterStack(const std::vector<ViewPtr>& views, int64_t size, torch::Device device)
    : side_(size), device_(device) {
  if (views.empty()) throw Error(ErrorKind::kInvalidArgument, "a filter stack needs a view");
  for (const auto& view : views) {
    const auto* factor = dynamic_cast<const FactorView*>(view.get());
    if (!factor) {
      throw Error(
          ErrorKind::kInvalidArgument,
          "view '" + (view ? view->name() : std::string("null")) + "' is not a factorized view");
    }
    factor->check_filter_size(size);
    filters_.push_back(factor->filter_at(size, device));
  }
}

torch::Tensor FilterStack::apply_each(const torch::Tensor& eps) const {
  if (eps.dim() != 4 || eps.size(0) != size() || eps.size(2) != side_ || eps.size(3) != side_ ||
      !same_device(eps.device(), device_)) {
    throw Error(ErrorKind::kInvalidArgument,
                "filter stack of " + std::to_string(size()) + " views at " + std::to_string(side_) +
                    " on " + device_.str() + ": expected (N, C, S, S) there, got " +
                    c10::str(eps.sizes()) + " on " + eps.device().str());
  }
  std::vector<torch::Tensor> parts;
  for (int64_t k = 0; k < size(); ++k) parts.push_back(filters_[k]->apply(eps.narrow(0, k, 1)));
  return torch::cat(parts, 0);
}

torch::Tensor FilterStack::render_each(const torch::Tensor& image) const {
  const torch::Tensor one = image.dim() == 3 ? image.unsqueeze(0) : image;
  std::vector<torch::Tensor> seen;
  for (const auto& filter : filters_) seen.push_back(filter->render(one));
  return torch::cat(seen, 0);
}

bool filters_sum_to_identity(const std::vector<ViewPtr>& views, int64_t size) {
  const FilterStack stack(views, size, torch::kCPU);
  const auto gen = at::detail::createCPUGenerator(7);
  const torch::Tensor x = at::randn({1, 3, size, size}, gen);
  const auto n = static_cast<int64_t>(views.size());
  const torch::Tensor sum = stack.apply_each(x.expand({n, 3, size, size}).contiguous()).sum(0);
  return torch::allclose(sum, x[0], 1e-4, 1e-5);
}

namespace views_detail {

int64_t odd_kernel_at(double size_at_64, int64_t side) {
  const double scaled = size_at_64 * static_cast<double>(side) / 64.0;
  return 2 * static_cast<int64_t>(std::floor(scaled / 2)) + 1;
}

void check_kernel_fits(const std::string& view, int64_t kernel_size, int64_t side) {
  if (kernel_size < 3 || kernel_size / 2 >= side) {
    throw Error(ErrorKind::kInvalidArgument,
                "view '" + view + "': its " + std::to_string(kernel_size) + "-pixel kernel at " +
                    std::to_string(side) + "x" + std::to_string(side) + " does not fit");
  }
}

GaussianBlur::GaussianBlur(int64_t kernel_size, double sigma, const torch::Device& device)
    : kernel_size_(kernel_size) {
  // Ref: torchvision _get_gaussian_kernel1d, in float32 as it computes it.
  const double half = (static_cast<double>(kernel_size) - 1) * 0.5;
  const torch::Tensor x = torch::linspace(-half, half, kernel_size, torch::kFloat32);
  const torch::Tensor pdf = torch::exp(-0.5 * (x / sigma).pow(2));
  const torch::Tensor kernel = (pdf / pdf.sum()).to(device);
  vertical_ = kernel.view({1, 1, kernel_size, 1});
  horizontal_ = kernel.view({1, 1, 1, kernel_size});
}

torch::Tensor GaussianBlur::operator()(const torch::Tensor& x) const {
  const int64_t b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  const int64_t pad = kernel_size_ / 2;
  // Channels as batch entries: one 1-d kernel for all of them.
  const torch::Tensor planes = x.reshape({b * c, 1, h, w});
  const torch::Tensor padded =
      F::pad(planes, F::PadFuncOptions({pad, pad, pad, pad}).mode(torch::kReflect));
  const torch::Tensor out =
      F::conv2d(F::conv2d(padded, vertical_.to(x.dtype())), horizontal_.to(x.dtype()));
  return out.reshape({b, c, h, w});
}

torch::Tensor motion_blur(const torch::Tensor& x, int64_t size) {
  const int64_t h = x.size(2), w = x.size(3), pad = size / 2;
  const torch::Tensor padded = F::pad(x, F::PadFuncOptions({pad, pad, pad, pad}));
  torch::Tensor sum = torch::zeros_like(x);
  for (int64_t i = 0; i < size; ++i) sum = sum + padded.narrow(2, i, h).narrow(3, i, w);
  return sum / static_cast<double>(size);
}

}  // namespace views_detail
}  // namespace anagram
