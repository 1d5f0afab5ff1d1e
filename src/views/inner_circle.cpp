// inner_circle: a disc in the middle turned 180 degrees, the border left in place.
//
// Published InnerCircleView (make_inner_circle_perm): radius r = 3/8 of the side (24 at 64,
// 96 at 256); pixel (ix, iy) with centred coordinates x = ix - S//2 + 0.5, y = iy - S//2 + 0.5
// is swapped with its point reflection when x^2 + y^2 < r^2. Ours is the same permutation on
// even sizes. On odd sizes the published centre sits half a pixel off the middle (at S//2 - 0.5);
// ours turns about the middle pixel. r = fraction * min(H, W) (0.375 by default, so exact on
// sides that are multiples of 8, e.g. 12 at 32 for attention maps); non-square grids turn about
// the grid centre.
#include <algorithm>

#include "anagram/core/error.h"
#include "views/view_util.h"

namespace anagram::views_detail {
namespace {

constexpr double kDefaultFraction = 0.375;

class InnerCircleView final : public View {
 public:
  InnerCircleView(double fraction, std::string arg) : View(std::move(arg)), fraction_(fraction) {}

  std::string name() const override { return "inner_circle"; }
  std::string description() const override {
    return "central disc of radius " + format_double(fraction_) +
           " x side turned 180 degrees, border fixed";
  }
  std::string canonical_arg() const override { return format_double(fraction_); }

 protected:
  torch::Tensor compute_source_index(int64_t height, int64_t width) const override {
    const double radius = fraction_ * static_cast<double>(std::min(height, width));
    const double cy = 0.5 * static_cast<double>(height - 1);
    const double cx = 0.5 * static_cast<double>(width - 1);
    return index_from_coords(height, width, [&](int64_t y, int64_t x) {
      const double dy = static_cast<double>(y) - cy;
      const double dx = static_cast<double>(x) - cx;
      if (dx * dx + dy * dy < radius * radius) {
        return std::make_pair(height - 1 - y, width - 1 - x);
      }
      return std::make_pair(y, x);
    });
  }

 private:
  double fraction_;
};

}  // namespace

ViewEntry inner_circle_view_entry() {
  return {{"inner_circle",
           {"circle"},
           "a central disc turned 180 degrees, the border fixed",
           "FRACTION: disc radius as a fraction of the shorter side",
           "0.375"},
          [](const std::string& arg) {
            const std::vector<std::string> parts = split_args(arg);
            if (parts.size() > 1) {
              throw Error(ErrorKind::kInvalidArgument,
                          "view 'inner_circle': argument is one number, got '" + arg + "'");
            }
            double fraction = kDefaultFraction;
            if (!parts[0].empty()) fraction = parse_finite("inner_circle", parts[0], "FRACTION");
            if (!(fraction > 0.0 && fraction <= 1.0)) {
              throw Error(ErrorKind::kInvalidArgument,
                          "view 'inner_circle': FRACTION must be in (0, 1], got '" + arg + "'");
            }
            return std::make_shared<const InnerCircleView>(fraction, arg);
          }};
}

}  // namespace anagram::views_detail
