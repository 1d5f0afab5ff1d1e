// flip (upside down) and mirror (left-right).
#include "views/view_util.h"

namespace anagram::views_detail {
namespace {

// Published FlipView: torch.flip(im, [1]) on (C,H,W), i.e. the rows reversed.
class FlipView final : public View {
 public:
  using View::View;
  std::string name() const override { return "flip"; }
  std::string description() const override { return "upside down (rows reversed)"; }

 protected:
  torch::Tensor compute_source_index(int64_t height, int64_t width) const override {
    return index_from_coords(
        height, width, [&](int64_t y, int64_t x) { return std::make_pair(height - 1 - y, x); });
  }
};

// Not in the published code: the left-right mirror image.
class MirrorView final : public View {
 public:
  using View::View;
  std::string name() const override { return "mirror"; }
  std::string description() const override { return "left-right mirror (columns reversed)"; }

 protected:
  torch::Tensor compute_source_index(int64_t height, int64_t width) const override {
    return index_from_coords(
        height, width, [&](int64_t y, int64_t x) { return std::make_pair(y, width - 1 - x); });
  }
};

}  // namespace

ViewEntry flip_view_entry() {
  return {{"flip", {"vflip", "upside_down"}, "upside down (rows reversed)", "", ""},
          [](const std::string& arg) {
            require_no_arg("flip", arg);
            return std::make_shared<const FlipView>(arg);
          }};
}

ViewEntry mirror_view_entry() {
  return {{"mirror", {"hflip"}, "left-right mirror (columns reversed)", "", ""},
          [](const std::string& arg) {
            require_no_arg("mirror", arg);
            return std::make_shared<const MirrorView>(arg);
          }};
}

}  // namespace anagram::views_detail
