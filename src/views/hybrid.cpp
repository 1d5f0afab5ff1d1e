// Hybrid images (Factorized Diffusion): low_pass / high_pass, and the three bands
// triple_low_pass / triple_medium_pass / triple_high_pass.
// Ref: visual_anagrams views/view_hybrid.py (sigma 2, kernel 33; triple: sigmas 1 and 2,
// kernel 25; all at 64x64, scaled with the picture).
#include "anagram/core/error.h"
#include "anagram/views/factor.h"
#include "views/filters.h"
#include "views/view_util.h"

namespace anagram::views_detail {
namespace {

constexpr double kHybridSigma = 2.0;
constexpr double kHybridKernel = 33;
constexpr double kTripleSigma1 = 1.0;
constexpr double kTripleSigma2 = 2.0;
constexpr double kTripleKernel = 25;

class PassFilter final : public Filter {
 public:
  PassFilter(GaussianBlur blur, bool high) : blur_(std::move(blur)), high_(high) {}
  torch::Tensor apply(const torch::Tensor& x) const override {
    return high_ ? x - blur_(x) : blur_(x);
  }
  // From afar one sees the low pass; up close, the whole picture.
  torch::Tensor render(const torch::Tensor& image) const override {
    return high_ ? image : blur_(image);
  }

 private:
  GaussianBlur blur_;
  bool high_;
};

class HybridView final : public FactorView {
 public:
  HybridView(bool high, double sigma, std::string arg)
      : FactorView(std::move(arg)), high_(high), sigma_(sigma) {}
  std::string name() const override { return high_ ? "high_pass" : "low_pass"; }
  std::string description() const override {
    return std::string(high_ ? "the estimate minus its Gaussian blur"
                             : "the estimate's Gaussian blur") +
           " (sigma " + format_double(sigma_) + " at 64x64): " +
           (high_ ? "what a hybrid image shows up close" : "what it shows from afar");
  }
  std::string canonical_arg() const override { return format_double(sigma_); }
  void check_filter_size(int64_t size) const override {
    check_kernel_fits(name(), odd_kernel_at(kHybridKernel, size), size);
  }
  std::unique_ptr<const Filter> filter_at(int64_t size,
                                          const torch::Device& device) const override {
    check_filter_size(size);
    return std::make_unique<PassFilter>(
        GaussianBlur(odd_kernel_at(kHybridKernel, size), sigma_ * size / 64.0, device), high_);
  }

 private:
  bool high_;
  double sigma_;
};

enum class Band { kLow, kMedium, kHigh };

// Ref: view_hybrid.py compute_triple_bandpass: mp = blur1(x), hp = x - mp, lp = blur2(mp),
// mp = mp - lp. From afar one sees lp, at a middle distance lp + mp, up close all three.
class TripleFilter final : public Filter {
 public:
  TripleFilter(GaussianBlur blur1, GaussianBlur blur2, Band band)
      : blur1_(std::move(blur1)), blur2_(std::move(blur2)), band_(band) {}
  torch::Tensor apply(const torch::Tensor& x) const override {
    const torch::Tensor medium_and_low = blur1_(x);
    if (band_ == Band::kHigh) return x - medium_and_low;
    const torch::Tensor low = blur2_(medium_and_low);
    return band_ == Band::kLow ? low : medium_and_low - low;
  }
  torch::Tensor render(const torch::Tensor& image) const override {
    if (band_ == Band::kHigh) return image;
    const torch::Tensor medium_and_low = blur1_(image);
    return band_ == Band::kLow ? blur2_(medium_and_low) : medium_and_low;
  }

 private:
  GaussianBlur blur1_, blur2_;
  Band band_;
};

class TripleView final : public FactorView {
 public:
  TripleView(Band band, std::string arg) : FactorView(std::move(arg)), band_(band) {}
  std::string name() const override {
    return band_ == Band::kLow      ? "triple_low_pass"
           : band_ == Band::kMedium ? "triple_medium_pass"
                                    : "triple_high_pass";
  }
  std::string description() const override {
    return band_ == Band::kLow      ? "the lowest of three frequency bands (seen from afar)"
           : band_ == Band::kMedium ? "the middle of three frequency bands"
                                    : "the highest of three frequency bands (seen up close)";
  }
  void check_filter_size(int64_t size) const override {
    check_kernel_fits(name(), odd_kernel_at(kTripleKernel, size), size);
  }
  std::unique_ptr<const Filter> filter_at(int64_t size,
                                          const torch::Device& device) const override {
    check_filter_size(size);
    const int64_t k = odd_kernel_at(kTripleKernel, size);
    return std::make_unique<TripleFilter>(GaussianBlur(k, kTripleSigma1 * size / 64.0, device),
                                          GaussianBlur(k, kTripleSigma2 * size / 64.0, device),
                                          band_);
  }

 private:
  Band band_;
};

ViewPtr make_hybrid(bool high, const std::string& arg) {
  const std::string name = high ? "high_pass" : "low_pass";
  double sigma = kHybridSigma;
  if (!arg.empty()) sigma = parse_finite(name, arg, "SIGMA");
  if (!(sigma > 0 && sigma <= 64)) {
    throw Error(ErrorKind::kInvalidArgument,
                "view '" + name + "': SIGMA must be in (0, 64], got '" + arg + "'");
  }
  return std::make_shared<const HybridView>(high, sigma, arg);
}

ViewEntry triple_entry(Band band, const std::string& name, const std::string& description) {
  ViewInfo info{name, {}, description, "", ""};
  info.kind = ViewKind::kFactor;
  return {info, [band, name](const std::string& arg) {
            require_no_arg(name, arg);
            return std::make_shared<const TripleView>(band, arg);
          }};
}

}  // namespace

ViewEntry low_pass_view_entry() {
  ViewInfo info{"low_pass",
                {"lowpass", "far"},
                "the noise estimate's Gaussian blur: what a hybrid image shows from afar",
                "SIGMA: the blur's sigma at 64x64 (scaled with the picture; pair it with "
                "high_pass of the same SIGMA)",
                "2"};
  info.kind = ViewKind::kFactor;
  return {info, [](const std::string& arg) { return make_hybrid(false, arg); }};
}

ViewEntry high_pass_view_entry() {
  ViewInfo info{"high_pass",
                {"highpass", "near"},
                "the noise estimate minus its Gaussian blur: what a hybrid shows up close",
                "SIGMA: the blur's sigma at 64x64 (scaled with the picture)",
                "2"};
  info.kind = ViewKind::kFactor;
  return {info, [](const std::string& arg) { return make_hybrid(true, arg); }};
}

ViewEntry triple_low_pass_view_entry() {
  return triple_entry(Band::kLow, "triple_low_pass",
                      "the lowest of three frequency bands of the estimate (seen from afar)");
}
ViewEntry triple_medium_pass_view_entry() {
  return triple_entry(Band::kMedium, "triple_medium_pass",
                      "the middle of three frequency bands of the estimate");
}
ViewEntry triple_high_pass_view_entry() {
  return triple_entry(Band::kHigh, "triple_high_pass",
                      "the highest of three frequency bands of the estimate (seen up close)");
}

}  // namespace anagram::views_detail
