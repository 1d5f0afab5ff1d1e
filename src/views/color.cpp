// Colour hybrids (Factorized Diffusion): grayscale / color.
// Ref: visual_anagrams views/view_color.py: the grayscale component is the channel mean (in
// every channel), the colour component the rest.
#include "anagram/core/error.h"
#include "anagram/views/factor.h"
#include "views/view_util.h"

namespace anagram::views_detail {
namespace {

torch::Tensor channel_mean(const torch::Tensor& x) { return x.mean(1, true).expand_as(x); }

class ColorFilter final : public Filter {
 public:
  explicit ColorFilter(bool color) : color_(color) {}
  torch::Tensor apply(const torch::Tensor& x) const override {
    return color_ ? x - channel_mean(x) : channel_mean(x).contiguous();
  }
  // In grayscale one sees the gray picture; in colour, the picture.
  torch::Tensor render(const torch::Tensor& image) const override {
    return color_ ? image : channel_mean(image).contiguous();
  }

 private:
  bool color_;
};

class ColorView final : public FactorView {
 public:
  ColorView(bool color, std::string arg) : FactorView(std::move(arg)), color_(color) {}
  std::string name() const override { return color_ ? "color" : "grayscale"; }
  std::string description() const override {
    return color_ ? "the estimate minus its channel mean: what colour adds"
                  : "the estimate's channel mean: the picture in grayscale";
  }
  std::unique_ptr<const Filter> filter_at(
      int64_t /*size: any*/, const torch::Device& /*device: no kernels*/) const override {
    return std::make_unique<ColorFilter>(color_);
  }

 private:
  bool color_;
};

ViewEntry color_entry(bool color, ViewInfo info) {
  info.kind = ViewKind::kFactor;
  const std::string name = info.name;
  return {info, [color, name](const std::string& arg) {
            require_no_arg(name, arg);
            return std::make_shared<const ColorView>(color, arg);
          }};
}

}  // namespace

ViewEntry grayscale_view_entry() {
  return color_entry(false, {"grayscale",
                             {"gray", "grey", "greyscale"},
                             "the noise estimate's channel mean: the picture in grayscale",
                             "",
                             ""});
}

ViewEntry color_view_entry() {
  return color_entry(
      true, {"color", {"colour"}, "the estimate minus its channel mean: what colour adds", "", ""});
}

}  // namespace anagram::views_detail
