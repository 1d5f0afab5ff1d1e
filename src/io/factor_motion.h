// Internal to src/io: how an animation shows a factorized view (Factorized Diffusion's
// animations): a hybrid's low band appears as the picture moves away, the grayscale component
// as the colour fades, the motion-blurred component as the picture shakes along its blur.
// Everything here is host memory (RgbImage).
#pragma once

#include <cstddef>

#include "anagram/io/image_io.h"
#include "anagram/views/views.h"

namespace anagram::detail {

struct FactorMotion {
  enum Kind { kNone, kZoomOut, kToGray, kShake } kind = kNone;
  double amount = 0;  // kZoomOut: the far side as a fraction of the near one; kShake: the blur's
                      // length as a fraction of the picture's side
};

// kNone for permutations and for the components seen as the picture is (high_pass, color,
// motion_res, triple_high_pass, scale).
FactorMotion factor_motion_of(const View& view);

// Draws `picture` into the top `stage` x `stage` square of `frame` (whose rows are frame.width
// wide, already white), centred at display side `display`, under `motion` at progress t in
// [0, 1]; `tick` (the frame's index) drives the shake.
void draw_factor_frame(const RgbImage& picture, int display, int stage, const FactorMotion& motion,
                       double t, size_t tick, RgbImage& frame);

}  // namespace anagram::detail
