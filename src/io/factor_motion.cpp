#include "io/factor_motion.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace anagram::detail {
namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr double kFarSide = 1.0 / 8;     // a hybrid seen from afar: an eighth of its near size
constexpr double kMiddleSide = 1.0 / 3;  // a triple hybrid's middle band
constexpr int kShakePeriod = 6;          // frames per shake

// The mean of picture pixels over the square [u0, u1) x [v0, v1) (picture coordinates),
// weighting partly covered pixels by their overlap: an antialiased downscale, so that the far
// picture keeps only what a viewer far away resolves.
void box_average(const RgbImage& picture, double u0, double v0, double u1, double v1,
                 uint8_t* out) {
  double sum[3] = {0, 0, 0}, weight = 0;
  const int x0 = std::max(0, static_cast<int>(std::floor(u0)));
  const int y0 = std::max(0, static_cast<int>(std::floor(v0)));
  const int x1 = std::min(picture.width, static_cast<int>(std::ceil(u1)));
  const int y1 = std::min(picture.height, static_cast<int>(std::ceil(v1)));
  for (int y = y0; y < y1; ++y) {
    const double wy = std::min<double>(y + 1, v1) - std::max<double>(y, v0);
    for (int x = x0; x < x1; ++x) {
      const double w = wy * (std::min<double>(x + 1, u1) - std::max<double>(x, u0));
      if (w <= 0) continue;
      const uint8_t* p = &picture.pixels[(static_cast<size_t>(y) * picture.width + x) * 3];
      for (int k = 0; k < 3; ++k) sum[k] += w * p[k];
      weight += w;
    }
  }
  if (weight <= 0) return;
  for (int k = 0; k < 3; ++k) out[k] = static_cast<uint8_t>(std::lround(sum[k] / weight));
}

}  // namespace

FactorMotion factor_motion_of(const View& view) {
  const std::string name = view.name();
  if (name == "low_pass" || name == "triple_low_pass") {
    return {FactorMotion::kZoomOut, kFarSide};
  }
  if (name == "triple_medium_pass") return {FactorMotion::kZoomOut, kMiddleSide};
  if (name == "grayscale") return {FactorMotion::kToGray, 0};
  if (name == "motion") {
    // The view's blur length at 64x64 is its argument; the shake covers it.
    const double length = view.canonical_arg().empty() ? 7 : std::stod(view.canonical_arg());
    return {FactorMotion::kShake, length / 64};
  }
  return {};
}

void draw_factor_frame(const RgbImage& picture, int display, int stage, const FactorMotion& motion,
                       double t, size_t tick, RgbImage& frame) {
  double side = display, dx = 0, dy = 0;
  if (motion.kind == FactorMotion::kZoomOut) side = display * (1 - t * (1 - motion.amount));
  if (motion.kind == FactorMotion::kShake) {
    // Along the blur's diagonal (top left to bottom right), its full length at t = 1.
    const double swing =
        0.5 * motion.amount * display * t *
        std::sin(2 * kPi * static_cast<double>(tick % kShakePeriod) / kShakePeriod);
    dx = dy = swing / std::sqrt(2.0);
  }
  const double left = (stage - side) / 2 + dx, top = (stage - side) / 2 + dy;
  const double scale = picture.width / side;  // picture pixels per display pixel
  for (int y = 0; y < stage; ++y) {
    for (int x = 0; x < stage; ++x) {
      const double u = (x - left) * scale, v = (y - top) * scale;
      if (u + scale <= 0 || v + scale <= 0 || u >= picture.width || v >= picture.height) continue;
      uint8_t* pixel = &frame.pixels[(static_cast<size_t>(y) * frame.width + x) * 3];
      box_average(picture, u, v, u + scale, v + scale, pixel);
      if (motion.kind == FactorMotion::kToGray) {
        const double gray = (pixel[0] + pixel[1] + pixel[2]) / 3.0;  // the filter's channel mean
        for (int k = 0; k < 3; ++k) {
          pixel[k] = static_cast<uint8_t>(std::lround(pixel[k] * (1 - t) + gray * t));
        }
      }
    }
  }
}

}  // namespace anagram::detail
