// rotate_cw, rotate_ccw, rotate_180: exact quarter and half turns.
//
// Published views call torchvision's TF.rotate(im, angle, NEAREST) with angle -90 (cw), +90
// (ccw) and 180; on a square grid nearest-neighbour sampling lands exactly on pixel centres, so
// they are these permutations (scripts/golden/golden_views.py checks that against a re-derivation of
// torchvision's grid). Angles are counter-clockwise as seen on screen (row 0 at the top).
#include "views/view_util.h"

namespace anagram::views_detail {
namespace {

enum class Turn { kClockwise, kCounterClockwise, kHalf };

class RotateView final : public View {
 public:
  RotateView(Turn turn, std::string arg) : View(std::move(arg)), turn_(turn) {}

  std::string name() const override {
    switch (turn_) {
      case Turn::kClockwise:
        return "rotate_cw";
      case Turn::kCounterClockwise:
        return "rotate_ccw";
      case Turn::kHalf:
        break;
    }
    return "rotate_180";
  }
  std::string description() const override { return describe(turn_); }

  static std::string describe(Turn turn) {
    switch (turn) {
      case Turn::kClockwise:
        return "rotated 90 degrees clockwise";
      case Turn::kCounterClockwise:
        return "rotated 90 degrees counter-clockwise";
      case Turn::kHalf:
        break;
    }
    return "rotated 180 degrees";
  }

  void check_size(int64_t height, int64_t width) const override {
    View::check_size(height, width);
    if (turn_ != Turn::kHalf) require_square(name(), height, width);
  }

 protected:
  torch::Tensor compute_source_index(int64_t height, int64_t width) const override {
    return index_from_coords(height, width, [&](int64_t y, int64_t x) {
      switch (turn_) {
        // Clockwise: the left column becomes the top row.
        case Turn::kClockwise:
          return std::make_pair(height - 1 - x, y);
        // Counter-clockwise: the right column becomes the top row.
        case Turn::kCounterClockwise:
          return std::make_pair(x, width - 1 - y);
        case Turn::kHalf:
          break;
      }
      return std::make_pair(height - 1 - y, width - 1 - x);
    });
  }

 private:
  Turn turn_;
};

ViewEntry rotate_entry(Turn turn, std::string name, std::vector<std::string> aliases) {
  ViewInfo info{name, std::move(aliases), RotateView::describe(turn), "", ""};
  return {info, [turn, name](const std::string& arg) {
            require_no_arg(name, arg);
            return std::make_shared<const RotateView>(turn, arg);
          }};
}

}  // namespace

ViewEntry rotate_cw_view_entry() {
  return rotate_entry(Turn::kClockwise, "rotate_cw", {"rot90", "cw", "rotate_90"});
}

ViewEntry rotate_ccw_view_entry() {
  return rotate_entry(Turn::kCounterClockwise, "rotate_ccw", {"rot270", "ccw", "rotate_270"});
}

ViewEntry rotate_180_view_entry() { return rotate_entry(Turn::kHalf, "rotate_180", {"rot180"}); }

}  // namespace anagram::views_detail
