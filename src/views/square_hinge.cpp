// square_hinge: a 3x3 grid of squares, each turned a quarter, alternating directions.
//
// Published make_square_hinge(S): squares of side s = S//3 at rows i*s, columns j*s
// (i, j in 0..2); square (i, j) becomes torch.rot90(square, k) with k = -1 (clockwise) when
// i + j is even (corners and centre) and k = +1 (counter-clockwise) otherwise; the S mod 3
// pixels left over at the bottom and right stay put. Ours is the same permutation.
#include "anagram/core/error.h"
#include "views/view_util.h"

namespace anagram::views_detail {
namespace {

class SquareHingeView final : public View {
 public:
  using View::View;
  std::string name() const override { return "square_hinge"; }
  std::string description() const override {
    return "3x3 squares each turned 90 degrees, directions alternating";
  }

  void check_size(int64_t height, int64_t width) const override {
    View::check_size(height, width);
    require_square(name(), height, width);
    if (height < 3) {
      throw Error(ErrorKind::kInvalidArgument,
                  "view 'square_hinge': needs at least 3x3 pixels, got " + std::to_string(height) +
                      "x" + std::to_string(width));
    }
  }

 protected:
  torch::Tensor compute_source_index(int64_t height, int64_t width) const override {
    const int64_t s = height / 3;
    return index_from_coords(height, width, [&](int64_t y, int64_t x) {
      const int64_t i = y / s;
      const int64_t j = x / s;
      if (i >= 3 || j >= 3) return std::make_pair(y, x);  // leftover strip
      const int64_t u = y - i * s;                        // row inside the square
      const int64_t v = x - j * s;                        // column inside the square
      if ((i + j) % 2 == 0) {
        // Clockwise: the square's left column becomes its top row.
        return std::make_pair(i * s + (s - 1 - v), j * s + u);
      }
      // Counter-clockwise: the square's right column becomes its top row.
      return std::make_pair(i * s + v, j * s + (s - 1 - u));
    });
  }
};

}  // namespace

ViewEntry square_hinge_view_entry() {
  return {{"square_hinge",
           {"hinge"},
           "3x3 squares each turned 90 degrees, directions alternating",
           "",
           ""},
          [](const std::string& arg) {
            require_no_arg("square_hinge", arg);
            return std::make_shared<const SquareHingeView>(arg);
          }};
}

}  // namespace anagram::views_detail
