// anagram/io/view_picture.h: a picture as a viewer sees it through one view, for animations,
// scores and tests that start from a written anagram.png.
//
// Basic usage:
//   const anagram::RgbImage upside_down = anagram::view_of(*anagram::make_view("flip"), picture);
//
// Where data lives: host memory only (RgbImage); factorized views' filters run on the CPU.
#pragma once

#include "anagram/io/image_io.h"
#include "anagram/views/views.h"

namespace anagram {

// The picture as seen through `view`. Views act on [-1, 1] pixels, so negate gives 255 - x;
// every other permutation only moves pixels (exact). A factorized view gives its rendering
// (a hybrid's low band, the grayscale picture, the motion-blurred one; see views/factor.h).
RgbImage view_of(const View& view, const RgbImage& image);

}  // namespace anagram
