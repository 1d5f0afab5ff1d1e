// The scale view (Factorized Diffusion): the noise estimate times a factor.
// Ref: visual_anagrams views/view_scale.py (factor 0.5).
#include <cmath>

#include "anagram/core/error.h"
#include "anagram/views/factor.h"
#include "views/view_util.h"

namespace anagram::views_detail {
namespace {

constexpr double kDefaultScale = 0.5;

class ScaleFilter final : public Filter {
 public:
  explicit ScaleFilter(double factor) : factor_(factor) {}
  torch::Tensor apply(const torch::Tensor& x) const override { return factor_ * x; }

 private:
  double factor_;
};

class ScaleView final : public FactorView {
 public:
  ScaleView(double factor, std::string arg) : FactorView(std::move(arg)), factor_(factor) {}
  std::string name() const override { return "scale"; }
  std::string description() const override {
    return "the estimate times " + format_double(factor_) + " (two of 0.5 sum to one picture)";
  }
  std::string canonical_arg() const override { return format_double(factor_); }
  std::unique_ptr<const Filter> filter_at(
      int64_t /*size: any*/, const torch::Device& /*device: no kernels*/) const override {
    return std::make_unique<ScaleFilter>(factor_);
  }

 private:
  double factor_;
};

}  // namespace

ViewEntry scale_view_entry() {
  ViewInfo info{"scale",
                {},
                "the noise estimate times a factor",
                "FACTOR: the estimate's weight in the sum, in [-100, 100]",
                "0.5"};
  info.kind = ViewKind::kFactor;
  return {info, [](const std::string& arg) {
            const double factor =
                arg.empty() ? kDefaultScale : parse_finite("scale", arg, "FACTOR");
            // Negative factors are the published negations (e.g. -6.5 and 7.5 make classifier-
            // free guidance of 7.5 out of "" and a prompt, at guidance 1).
            if (!(std::abs(factor) <= 100)) {
              throw Error(ErrorKind::kInvalidArgument,
                          "view 'scale': FACTOR must be in [-100, 100], got '" + arg + "'");
            }
            return std::make_shared<const ScaleView>(factor, arg);
          }};
}

}  // namespace anagram::views_detail
