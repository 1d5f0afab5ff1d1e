// Motion hybrids (Factorized Diffusion): motion / motion_res.
// Ref: visual_anagrams views/view_motion.py: a diagonal motion blur of 7 pixels at 64x64
// (scaled with the picture, kept odd), and its residual.
#include "anagram/core/error.h"
#include "anagram/views/factor.h"
#include "views/filters.h"
#include "views/view_util.h"

namespace anagram::views_detail {
namespace {

constexpr int64_t kDefaultMotion = 7;

class MotionFilter final : public Filter {
 public:
  MotionFilter(int64_t size, bool residual) : size_(size), residual_(residual) {}
  torch::Tensor apply(const torch::Tensor& x) const override {
    return residual_ ? x - motion_blur(x, size_) : motion_blur(x, size_);
  }
  // Moving, one sees the blurred picture; still, the picture.
  torch::Tensor render(const torch::Tensor& image) const override {
    return residual_ ? image : motion_blur(image, size_);
  }

 private:
  int64_t size_;
  bool residual_;
};

class MotionView final : public FactorView {
 public:
  MotionView(bool residual, int64_t length, std::string arg)
      : FactorView(std::move(arg)), residual_(residual), length_(length) {}
  std::string name() const override { return residual_ ? "motion_res" : "motion"; }
  std::string description() const override {
    return std::string(residual_ ? "the estimate minus its diagonal motion blur"
                                 : "the estimate's diagonal motion blur") +
           " (" + std::to_string(length_) + " pixels at 64x64)";
  }
  std::string canonical_arg() const override { return std::to_string(length_); }
  void check_filter_size(int64_t size) const override {
    check_kernel_fits(name(), odd_kernel_at(static_cast<double>(length_), size), size);
  }
  std::unique_ptr<const Filter> filter_at(int64_t size,
                                          const torch::Device& device) const override {
    (void)device;
    check_filter_size(size);
    return std::make_unique<MotionFilter>(odd_kernel_at(static_cast<double>(length_), size),
                                          residual_);
  }

 private:
  bool residual_;
  int64_t length_;
};

ViewEntry motion_entry(bool residual, ViewInfo info) {
  info.kind = ViewKind::kFactor;
  info.arg_help = "LENGTH: the blur's length in pixels at 64x64 (scaled with the picture)";
  info.arg_default = std::to_string(kDefaultMotion);
  const std::string name = info.name;
  return {info, [residual, name](const std::string& arg) {
            const int64_t length =
                arg.empty() ? kDefaultMotion : parse_int(name, arg, "LENGTH", 3, 63);
            return std::make_shared<const MotionView>(residual, length, arg);
          }};
}

}  // namespace

ViewEntry motion_view_entry() {
  return motion_entry(false, {"motion",
                              {"motion_blur"},
                              "the noise estimate's diagonal motion blur: the picture in motion",
                              "",
                              ""});
}

ViewEntry motion_res_view_entry() {
  return motion_entry(true, {"motion_res",
                             {"still"},
                             "the estimate minus its motion blur: what shows when still",
                             "",
                             ""});
}

}  // namespace anagram::views_detail
