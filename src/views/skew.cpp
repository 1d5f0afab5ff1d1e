// skew: every column rolled vertically by a displacement that grows across the image.
//
// Published SkewView(skew_factor=1.5): column i is rolled (torch.roll along the rows) by
// d = int(skew_factor * (i - h//2)), int() truncating toward zero; the inverse uses -skew_factor,
// which is the exact inverse roll. Ours is the same permutation; for a non-square image the
// centre column is width//2 (the published code uses h//2, equal on square images).
#include <cmath>

#include "anagram/core/error.h"
#include "views/view_util.h"

namespace anagram::views_detail {
namespace {

constexpr double kDefaultSkew = 1.5;
constexpr double kMaxSkew = 1e6;

class SkewView final : public View {
 public:
  SkewView(double factor, std::string arg) : View(std::move(arg)), factor_(factor) {}

  std::string name() const override { return "skew"; }
  std::string description() const override {
    return "columns rolled vertically by trunc(" + format_double(factor_) +
           " * (column - centre)) pixels";
  }
  std::string canonical_arg() const override { return format_double(factor_); }

 protected:
  torch::Tensor compute_source_index(int64_t height, int64_t width) const override {
    std::vector<int64_t> shift(static_cast<size_t>(width));
    for (int64_t x = 0; x < width; ++x) {
      // Python's int(float) truncates toward zero, as does this cast.
      const auto d = static_cast<int64_t>(factor_ * static_cast<double>(x - width / 2));
      shift[static_cast<size_t>(x)] = ((d % height) + height) % height;
    }
    // roll by d: out[y] = in[(y - d) mod H].
    return index_from_coords(height, width, [&](int64_t y, int64_t x) {
      return std::make_pair((y - shift[static_cast<size_t>(x)] + height) % height, x);
    });
  }

 private:
  double factor_;
};

}  // namespace

ViewEntry skew_view_entry() {
  return {{"skew",
           {"shear"},
           "columns rolled vertically by amounts growing across the image",
           "FACTOR: roll of column x is trunc(FACTOR * (x - width/2)) pixels",
           "1.5"},
          [](const std::string& arg) {
            const std::vector<std::string> parts = split_args(arg);
            double factor = kDefaultSkew;
            if (parts.size() > 1) {
              throw Error(ErrorKind::kInvalidArgument,
                          "view 'skew': argument is one number, got '" + arg + "'");
            }
            if (!parts[0].empty()) factor = parse_finite("skew", parts[0], "FACTOR");
            if (std::abs(factor) > kMaxSkew) {
              throw Error(ErrorKind::kInvalidArgument,
                          "view 'skew': FACTOR must be within [-1e6, 1e6], got '" + arg + "'");
            }
            return std::make_shared<const SkewView>(factor, arg);
          }};
}

}  // namespace anagram::views_detail
