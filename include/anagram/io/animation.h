// anagram/io/animation.h: a visual anagram in motion, as the published code shows them: the
// picture turns, flips or has its jigsaw pieces move from upright to each view and back, with
// the prompt of what is seen as the caption (cross-faded during the move).
//
//   const anagram::AnimationPlan plan = anagram::plan_animation(picture, tasks, &font, {});
//   anagram::write_file_atomic("dog-cat.webp", anagram::encode_webp_animation(plan));
//
// A plan draws its frames one at a time as the encoder asks for them, so memory does not grow
// with the number of frames; its size (frames x pixels) is bounded before any frame is drawn.
//
// Motions by view: rotate_cw / rotate_ccw / rotate_180 turn the picture; flip and mirror turn
// it over (a shrinking then mirrored axis); jigsaw moves and turns each piece from its home to
// its place; every other view (negate, skew, permutations) cross-fades to the viewed picture.
// The last frame of each move is the view's own picture (exactly, up to display scaling).
// Factorized views, as Factorized Diffusion shows them: a hybrid's low_pass (and a triple's
// low and medium bands) appears as the picture moves away (an antialiased shrink to an eighth,
// a third for the medium band); grayscale as the colour fades; motion as the picture shakes
// along its blur's diagonal. high_pass, color, motion_res and scale are seen as the picture is:
// their prompt is the caption at rest.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
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

// The most pixels (frames x width x height) an animation may have: about 200 frames at the
// largest display size (2048, on a 3072-pixel stage), or 12 000 at the default 256.
constexpr uint64_t kMaxAnimationPixels = uint64_t{1} << 31;

// Frames to encode, all the same size, each shown for frame_time_ms.
class FrameSource {
 public:
  virtual ~FrameSource() = default;
  virtual size_t frame_count() const = 0;
  virtual RgbImage frame(size_t index) const = 0;
  virtual int frame_time_ms() const = 0;
};

// Frames held in memory.
struct Animation final : FrameSource {
  std::vector<RgbImage> frames;  // all the same size
  int frame_ms = 40;

  size_t frame_count() const override { return frames.size(); }
  RgbImage frame(size_t index) const override { return frames.at(index); }
  int frame_time_ms() const override { return frame_ms; }
};

// Frames drawn on demand from the picture (copied in) and the font (which must outlive it).
class AnimationPlan final : public FrameSource {
 public:
  struct Impl;
  explicit AnimationPlan(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  size_t frame_count() const override;
  RgbImage frame(size_t index) const override;
  int frame_time_ms() const override;
  int width() const;
  int height() const;

 private:
  std::shared_ptr<const Impl> impl_;
};

// picture: the anagram (RGB, square). tasks: its (view, prompt) pairs, e.g. from metadata.json.
// For each task whose view is not the identity: hold upright, move to the view, hold, move back.
// Frame count: (number of non-identity tasks) * 2 * (hold_frames + transition_frames).
// font may be null (captions in the bitmap font). Throws Error(kInvalidArgument) for bad options
// and for more than kMaxAnimationPixels in all, before any frame is drawn.
AnimationPlan plan_animation(const RgbImage& picture, const std::vector<Task>& tasks,
                             const CaptionFont* font, const AnimationOptions& options);
// The plan's frames, all drawn (for tests and small animations).
Animation animate_tasks(const RgbImage& picture, const std::vector<Task>& tasks,
                        const CaptionFont* font, const AnimationOptions& options);

// Writes the frames as frame_NNNN.png into `folder`, which must not exist: they are written into
// a new temporary folder beside it, renamed into place when all are there (never replacing
// anything), and removed on any failure, so the folder appears whole or not at all.
void write_png_frames(const FrameSource& frames, const std::filesystem::path& folder);

// Whether this build can write animated WebP (it needs libwebp's encoder and muxer).
bool webp_supported();
// Throws Error(kRuntime) saying how to get WebP support unless webp_supported(); for checking
// before any work.
void require_webp();
// Animated WebP that loops forever; lossless keeps every pixel, lossy (quality 80) is smaller.
// Frames are drawn and added one at a time. Deterministic for the same frames. Throws
// Error(kRuntime) if !webp_supported().
std::string encode_webp_animation(const FrameSource& frames, bool lossless = false);

}  // namespace anagram
