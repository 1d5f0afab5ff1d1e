// identity and negate: the views that move no pixel.
#include "views/view_util.h"

namespace anagram::views_detail {
namespace {

torch::Tensor identity_index(int64_t height, int64_t width) {
  return torch::arange(height * width, torch::kInt64);
}

class IdentityView final : public View {
 public:
  using View::View;
  std::string name() const override { return "identity"; }
  std::string description() const override { return "the image as it is"; }

 protected:
  torch::Tensor compute_source_index(int64_t height, int64_t width) const override {
    return identity_index(height, width);
  }
};

// Published NegateView: view(im) = -im. Its inverse_view negates only the 3 noise channels of
// the UNet output; use signed_channels = 3 for that (see View::inverse).
class NegateView final : public View {
 public:
  using View::View;
  std::string name() const override { return "negate"; }
  std::string description() const override { return "every value negated (colours inverted)"; }
  int sign() const override { return -1; }

 protected:
  torch::Tensor compute_source_index(int64_t height, int64_t width) const override {
    return identity_index(height, width);
  }
};

}  // namespace

ViewEntry identity_view_entry() {
  return {{"identity", {"id", "none"}, "the image as it is", "", ""}, [](const std::string& arg) {
            require_no_arg("identity", arg);
            return std::make_shared<const IdentityView>(arg);
          }};
}

ViewEntry negate_view_entry() {
  return {{"negate", {"neg"}, "every value negated (colours inverted)", "", ""},
          [](const std::string& arg) {
            require_no_arg("negate", arg);
            return std::make_shared<const NegateView>(arg);
          }};
}

}  // namespace anagram::views_detail
