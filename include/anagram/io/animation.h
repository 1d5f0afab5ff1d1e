// anagram/io/animation.h: a visual anagram in motion, as the published code shows them: the
// picture turns, flips or has its jigsaw pieces move from upright to each view and back, with
// the prompt of what is seen as the caption (cross-faded during the move).
//
//   anagram::Animation a = anagram::animate_tasks(picture, tasks, &font, {});
//   anagram::write_file_atomic("dog-cat.webp", anagram::encode_webp_animation(a));
//
// Motions by view: rotate_cw / rotate_ccw / rotate_180 turn the picture; flip and mirror turn
// it over (a shrinking then mirrored axis); jigsaw moves and turns each piece from its home to
// its place; every other view (negate, skew, permutations) cross-fades to the viewed picture.
// The last frame of each move is the view's own picture (exactly, up to display scaling).
#pragma once

#include <string>
#include <vector>

#include "anagram/io/caption_font.h"
#include "anagram/io/image_io.h"
#include "anagram/views/task.h"

namespace anagram {

struct AnimationOptions {
  int display_size = 256;      // side of the picture in the frames (a multiple of its side)
  int transition_frames = 36;  // frames of each move
  int hold_frames = 12;        // frames standing still before each move
  int frame_ms = 40;           // display time of one frame (25 frames a second)
};

struct Animation {
  std::vector<RgbImage> frames;  // all the same size
  int frame_ms = 40;
};

// picture: the anagram (RGB, square). tasks: its (view, prompt) pairs, e.g. from metadata.json.
// For each task whose view is not the identity: hold upright, move to the view, hold, move back.
// Frame count: (number of non-identity tasks) * 2 * (hold_frames + transition_frames).
// font may be null (captions in the bitmap font). Throws Error(kInvalidArgument) for bad options.
Animation animate_tasks(const RgbImage& picture, const std::vector<Task>& tasks,
                        const CaptionFont* font, const AnimationOptions& options);

// Whether this build can write animated WebP (it needs libwebp's encoder and muxer).
bool webp_supported();
// Throws Error(kRuntime) saying how to get WebP support unless webp_supported(); for checking
// before any work.
void require_webp();
// Animated WebP that loops forever; lossless keeps every pixel, lossy (quality 80) is smaller.
// Deterministic for the same frames. Throws Error(kRuntime) if !webp_supported().
std::string encode_webp_animation(const Animation& animation, bool lossless = false);

}  // namespace anagram
