#include "anagram/io/animation.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <memory>

#include "anagram/core/error.h"
#include "anagram/io/view_picture.h"
#include "anagram/views/jigsaw.h"
#include "io/factor_motion.h"

#ifdef ANAGRAM_HAVE_WEBP
#include <webp/encode.h>
#include <webp/mux.h>
#endif

namespace anagram {
namespace {

constexpr double kPi = 3.14159265358979323846;

enum class Motion {
  kNone,
  kTurn,
  kTurnOverVertically,
  kTurnOverHorizontally,
  kJigsaw,
  kFade,
  kFactor
};

struct Move {
  Motion motion;
  double degrees;               // kTurn: clockwise on screen
  detail::FactorMotion factor;  // kFactor

  explicit Move(Motion m, double turn = 0, detail::FactorMotion f = {})
      : motion(m), degrees(turn), factor(f) {}
};

Move move_of(const View& view) {
  if (view.kind() == ViewKind::kFactor) {
    const detail::FactorMotion factor = detail::factor_motion_of(view);
    if (factor.kind == detail::FactorMotion::kNone) return Move(Motion::kNone);
    return Move(Motion::kFactor, 0, factor);
  }
  const std::string name = view.name();
  if (name == "identity") return Move(Motion::kNone);
  if (name == "rotate_cw") return Move(Motion::kTurn, 90);
  if (name == "rotate_ccw") return Move(Motion::kTurn, -90);
  if (name == "rotate_180") return Move(Motion::kTurn, 180);
  if (name == "flip") return Move(Motion::kTurnOverVertically);
  if (name == "mirror") return Move(Motion::kTurnOverHorizontally);
  if (name == "jigsaw") return Move(Motion::kJigsaw);
  return Move(Motion::kFade);
}

double smoothstep(double t) { return t * t * (3 - 2 * t); }

// The frame layout: the picture (side d) centred on a square stage wide enough for any turn,
// a caption band underneath.
struct Layout {
  int d = 0;        // picture side
  int stage = 0;    // stage side
  int caption = 0;  // caption band height
};

class Renderer {
 public:
  Renderer(const RgbImage& picture, const Layout& layout, const CaptionFont* font)
      : picture_(picture), layout_(layout), font_(font) {
    if (picture.width % jigsaw::kGrid == 0 && picture.width >= 16) {
      pieces_ = jigsaw::piece_map(picture.width);
      moves_ = jigsaw::piece_moves();
    }
  }

  // The picture on its way from upright (t = 0) to `task`'s view (t = 1), captioned.
  // `tick`, the frame's index, drives motions that repeat (a shake).
  RgbImage frame(const Task& task, const RgbImage& viewed, double t, size_t tick,
                 const std::string& from_caption) const {
    RgbImage out;
    out.width = layout_.stage;
    out.height = layout_.stage + layout_.caption;
    out.pixels.assign(static_cast<size_t>(out.width) * out.height * 3, 255);
    const Move move = move_of(*task.view);
    const double half = layout_.stage / 2.0;
    if (move.motion == Motion::kFactor) {
      detail::draw_factor_frame(picture_, layout_.d, layout_.stage, move.factor, t, tick, out);
    }
    for (int y = 0; move.motion != Motion::kFactor && y < layout_.stage; ++y) {
      for (int x = 0; x < layout_.stage; ++x) {
        uint8_t* pixel = &out.pixels[(static_cast<size_t>(y) * out.width + x) * 3];
        const double cx = x + 0.5 - half, cy = y + 0.5 - half;  // from the stage centre
        shade(pixel, move, cx, cy, t, viewed);
      }
    }
    caption(out, from_caption, 1 - t);
    caption(out, task.prompt, t);
    return out;
  }

 private:
  // Nearest picture pixel under display coordinates (u, v) in [0, d), or null outside.
  const uint8_t* at(const RgbImage& image, double u, double v) const {
    if (u < 0 || v < 0 || u >= layout_.d || v >= layout_.d) return nullptr;
    const int px = std::min(image.width - 1, static_cast<int>(u * image.width / layout_.d));
    const int py = std::min(image.height - 1, static_cast<int>(v * image.height / layout_.d));
    return &image.pixels[(static_cast<size_t>(py) * image.width + px) * 3];
  }

  // Bilinear between the display pixels around (u, v) (display pixels are nearest-scaled
  // picture pixels, so integer scales stay crisp where the picture is not turned).
  bool bilinear(double u, double v, uint8_t* out) const {
    const double fu = u - 0.5, fv = v - 0.5;
    const double u0 = std::floor(fu), v0 = std::floor(fv);
    const double wu = fu - u0, wv = fv - v0;
    double sum[3] = {0, 0, 0};
    double weight = 0;
    for (int j = 0; j < 2; ++j) {
      for (int i = 0; i < 2; ++i) {
        const double w = (i ? wu : 1 - wu) * (j ? wv : 1 - wv);
        const uint8_t* p = at(picture_, u0 + i + 0.5, v0 + j + 0.5);
        if (p == nullptr || w == 0) continue;
        for (int k = 0; k < 3; ++k) sum[k] += w * p[k];
        weight += w;
      }
    }
    if (weight < 0.5) return false;  // outside the picture
    for (int k = 0; k < 3; ++k) out[k] = static_cast<uint8_t>(std::lround(sum[k] / weight));
    return true;
  }

  void shade(uint8_t* pixel, const Move& move, double cx, double cy, double t,
             const RgbImage& viewed) const {
    const double half = layout_.d / 2.0;
    switch (move.motion) {
      case Motion::kNone:
      case Motion::kFade: {
        const uint8_t* a = at(picture_, cx + half, cy + half);
        const uint8_t* b = at(viewed, cx + half, cy + half);
        if (a == nullptr) return;
        for (int k = 0; k < 3; ++k)
          pixel[k] = static_cast<uint8_t>(std::lround(a[k] * (1 - t) + b[k] * t));
        return;
      }
      case Motion::kTurn: {
        // Turned by phi clockwise on screen: the source is the point turned back.
        const double phi = move.degrees * t * kPi / 180;
        const double c = std::cos(phi), s = std::sin(phi);
        bilinear(c * cx + s * cy + half, -s * cx + c * cy + half, pixel);
        return;
      }
      case Motion::kTurnOverVertically:
      case Motion::kTurnOverHorizontally: {
        const double squeeze = std::cos(kPi * t);
        if (std::abs(squeeze) < 1e-6) return;
        const bool vertical = move.motion == Motion::kTurnOverVertically;
        bilinear(vertical ? cx + half : cx / squeeze + half,
                 vertical ? cy / squeeze + half : cy + half, pixel);
        return;
      }
      case Motion::kJigsaw:
        jigsaw_shade(pixel, cx + half, cy + half, t);
        return;
      case Motion::kFactor:  // drawn whole by draw_factor_frame
        return;
    }
  }

  // Each piece moves in a straight line from its home to its place, turning about its centre.
  void jigsaw_shade(uint8_t* pixel, double u, double v, double t) const {
    const double cell = layout_.d / static_cast<double>(jigsaw::kGrid);
    for (const jigsaw::PieceMove& m : moves_) {
      const double home_u = (m.from_cell % jigsaw::kGrid + 0.5) * cell;
      const double home_v = (m.from_cell / jigsaw::kGrid + 0.5) * cell;
      const double to_u = (m.to_cell % jigsaw::kGrid + 0.5) * cell;
      const double to_v = (m.to_cell / jigsaw::kGrid + 0.5) * cell;
      const double mu = home_u + (to_u - home_u) * t, mv = home_v + (to_v - home_v) * t;
      const double lu = u - mu, lv = v - mv;
      if (lu * lu + lv * lv > 2 * cell * cell) continue;  // beyond the piece and its tabs
      // Turned counter-clockwise by quarter_turns * 90 * t: the source turns clockwise back.
      const double phi = m.quarter_turns_ccw * 90.0 * t * kPi / 180;
      const double c = std::cos(phi), s = std::sin(phi);
      const double su = home_u + c * lu - s * lv, sv = home_v + s * lu + c * lv;
      if (su < 0 || sv < 0 || su >= layout_.d || sv >= layout_.d) continue;
      const int pu =
          std::min(picture_.width - 1, static_cast<int>(su * picture_.width / layout_.d));
      const int pv =
          std::min(picture_.height - 1, static_cast<int>(sv * picture_.height / layout_.d));
      if (pieces_[static_cast<size_t>(pv) * picture_.width + pu] != m.from_cell) continue;
      const uint8_t* p = &picture_.pixels[(static_cast<size_t>(pv) * picture_.width + pu) * 3];
      std::copy(p, p + 3, pixel);
    }
  }

  void caption(RgbImage& frame, const std::string& text, double opacity) const {
    if (text.empty() || opacity <= 0) return;
    const int top = layout_.stage;
    if (font_ != nullptr) {
      font_->draw_centered(frame, text, 0, top, frame.width, layout_.caption,
                           static_cast<float>(opacity));
    } else if (opacity >= 0.5) {
      draw_bitmap_text(frame, text, 8, top + layout_.caption / 4, 2);
    }
  }

  const RgbImage& picture_;
  Layout layout_;
  const CaptionFont* font_;
  std::vector<int> pieces_;  // empty when the picture has no jigsaw form
  std::vector<jigsaw::PieceMove> moves_;
};

}  // namespace

struct AnimationPlan::Impl {
  RgbImage picture;
  std::vector<Task> tasks;       // the moving ones
  std::vector<RgbImage> viewed;  // each task's view of the picture
  std::string upright_caption;
  Layout layout;
  const CaptionFont* font = nullptr;
  std::unique_ptr<Renderer> renderer;  // refers to `picture`
  int hold = 0, transition = 0, frame_ms = 40;

  size_t per_task() const { return 2 * static_cast<size_t>(hold + transition); }
};

AnimationPlan plan_animation(const RgbImage& picture, const std::vector<Task>& tasks,
                             const CaptionFont* font, const AnimationOptions& options) {
  if (picture.width != picture.height || picture.width < 1) {
    throw Error(ErrorKind::kInvalidArgument, "animate: the picture must be square");
  }
  if (options.display_size < picture.width || options.display_size % picture.width != 0 ||
      options.display_size > 2048) {
    throw Error(ErrorKind::kInvalidArgument, "size",
                "must be a multiple of the picture's side (" + std::to_string(picture.width) +
                    ") and at most 2048");
  }
  if (options.transition_frames < 1 || options.transition_frames > 1000 ||
      options.hold_frames < 0 || options.hold_frames > 1000) {
    throw Error(ErrorKind::kInvalidArgument, "frames", "moves take 1..1000 frames, holds 0..1000");
  }
  if (options.frame_ms < 10 || options.frame_ms > 10000) {
    throw Error(ErrorKind::kInvalidArgument, "fps", "frames last 10 ms to 10 s");
  }
  auto impl = std::make_shared<AnimationPlan::Impl>();
  impl->picture = picture;
  impl->font = font;
  impl->hold = options.hold_frames;
  impl->transition = options.transition_frames;
  impl->frame_ms = options.frame_ms;
  Layout& layout = impl->layout;
  layout.d = options.display_size;
  layout.stage = (static_cast<int>(std::ceil(layout.d * 1.5)) + 1) / 2 * 2;
  layout.caption = std::max(24, layout.d / 5);
  for (const Task& task : tasks) {
    if (move_of(*task.view).motion == Motion::kNone) {
      impl->upright_caption = task.prompt;
    } else {
      impl->tasks.push_back(task);
    }
  }
  if (impl->tasks.empty()) {
    throw Error(ErrorKind::kInvalidArgument,
                "animate: nothing moves: every view is the identity or, for factorized views, "
                "a component seen as the picture is");
  }
  // Bounded before any frame is drawn: the encoders' time and the output grow with it.
  const uint64_t frames = impl->tasks.size() * impl->per_task();
  const uint64_t pixels = frames * static_cast<uint64_t>(layout.stage) *
                          static_cast<uint64_t>(layout.stage + layout.caption);
  if (pixels > kMaxAnimationPixels) {
    throw Error(ErrorKind::kInvalidArgument, "frames",
                std::to_string(frames) + " frames of " + std::to_string(layout.stage) + "x" +
                    std::to_string(layout.stage + layout.caption) +
                    " pixels are too many (at most 2^31 pixels in all): fewer --frames or "
                    "--hold, or a smaller --display");
  }
  for (const Task& task : impl->tasks) {
    task.view->check_size(picture.width, picture.height);
    impl->viewed.push_back(view_of(*task.view, picture));
  }
  impl->renderer = std::make_unique<Renderer>(impl->picture, layout, font);
  return AnimationPlan(std::move(impl));
}

size_t AnimationPlan::frame_count() const { return impl_->tasks.size() * impl_->per_task(); }

int AnimationPlan::frame_time_ms() const { return impl_->frame_ms; }

int AnimationPlan::width() const { return impl_->layout.stage; }

int AnimationPlan::height() const { return impl_->layout.stage + impl_->layout.caption; }

// Per task: hold upright, move to the view, hold, move back.
RgbImage AnimationPlan::frame(size_t index) const {
  const Impl& p = *impl_;
  if (index >= frame_count()) throw Error(ErrorKind::kInvalidArgument, "animate: no such frame");
  const size_t k = index / p.per_task();
  size_t i = index % p.per_task();
  const auto hold = static_cast<size_t>(p.hold), n = static_cast<size_t>(p.transition);
  double t;
  if (i < hold) {
    t = 0;
  } else if ((i -= hold) < n) {
    t = smoothstep(static_cast<double>(i + 1) / static_cast<double>(n));
  } else if ((i -= n) < hold) {
    t = 1;
  } else {
    i -= hold;
    t = smoothstep(1 - static_cast<double>(i + 1) / static_cast<double>(n));
  }
  return p.renderer->frame(p.tasks[k], p.viewed[k], t, index, p.upright_caption);
}

Animation animate_tasks(const RgbImage& picture, const std::vector<Task>& tasks,
                        const CaptionFont* font, const AnimationOptions& options) {
  const AnimationPlan plan = plan_animation(picture, tasks, font, options);
  Animation animation;
  animation.frame_ms = plan.frame_time_ms();
  for (size_t i = 0; i < plan.frame_count(); ++i) animation.frames.push_back(plan.frame(i));
  return animation;
}

void write_png_frames(const FrameSource& frames, const std::filesystem::path& folder) {
  namespace fs = std::filesystem;
  const fs::path parent = folder.has_parent_path() ? folder.parent_path() : ".";
  std::error_code ec;
  fs::create_directories(parent, ec);  // as the folder itself would have been
  std::string pattern = (parent / ("." + folder.filename().string() + ".tmp-XXXXXX")).string();
  if (mkdtemp(pattern.data()) == nullptr) {
    throw Error(ErrorKind::kIo,
                "cannot create a folder beside '" + folder.string() + "': " + std::strerror(errno));
  }
  const fs::path temp = pattern;
  try {
    for (size_t i = 0; i < frames.frame_count(); ++i) {
      char name[32];
      std::snprintf(name, sizeof name, "frame_%04zu.png", i);
      write_file_atomic(temp / name, encode_png(frames.frame(i)));
    }
    if (renameat2(AT_FDCWD, temp.c_str(), AT_FDCWD, folder.c_str(), RENAME_NOREPLACE) != 0) {
      throw Error(ErrorKind::kIo,
                  "cannot create '" + folder.string() + "': " + std::strerror(errno));
    }
  } catch (...) {
    std::error_code ignored;
    fs::remove_all(temp, ignored);
    throw;
  }
}

#ifdef ANAGRAM_HAVE_WEBP

bool webp_supported() { return true; }

void require_webp() {}

std::string encode_webp_animation(const FrameSource& frames, bool lossless) {
  if (frames.frame_count() == 0) throw Error(ErrorKind::kInvalidArgument, "animate: no frames");
  const RgbImage first = frames.frame(0);
  const int width = first.width, height = first.height;
  WebPAnimEncoderOptions encoder_options;
  if (!WebPAnimEncoderOptionsInit(&encoder_options)) {
    throw Error(ErrorKind::kRuntime, "libwebp: version mismatch");
  }
  encoder_options.anim_params.loop_count = 0;  // forever
  WebPAnimEncoder* encoder = WebPAnimEncoderNew(width, height, &encoder_options);
  if (encoder == nullptr) throw Error(ErrorKind::kRuntime, "libwebp: cannot start the encoder");
  WebPConfig config;
  WebPConfigInit(&config);
  config.lossless = lossless ? 1 : 0;
  config.quality = lossless ? 75 : 80;
  config.thread_level = 0;  // deterministic output
  int timestamp = 0;
  std::string failure;
  for (size_t i = 0; i < frames.frame_count(); ++i) {
    const RgbImage frame = i == 0 ? first : frames.frame(i);
    if (frame.width != width || frame.height != height) {
      WebPAnimEncoderDelete(encoder);
      throw Error(ErrorKind::kInvalidArgument, "animate: frames of different sizes");
    }
    WebPPicture picture;
    WebPPictureInit(&picture);
    picture.width = width;
    picture.height = height;
    picture.use_argb = 1;
    if (!WebPPictureImportRGB(&picture, frame.pixels.data(), width * 3) ||
        !WebPAnimEncoderAdd(encoder, &picture, timestamp, &config)) {
      failure = WebPAnimEncoderGetError(encoder);
    }
    WebPPictureFree(&picture);
    if (!failure.empty()) break;
    timestamp += frames.frame_time_ms();
  }
  WebPData data;
  WebPDataInit(&data);
  if (failure.empty() && (!WebPAnimEncoderAdd(encoder, nullptr, timestamp, nullptr) ||
                          !WebPAnimEncoderAssemble(encoder, &data))) {
    failure = WebPAnimEncoderGetError(encoder);
  }
  WebPAnimEncoderDelete(encoder);
  if (!failure.empty()) {
    WebPDataClear(&data);
    throw Error(ErrorKind::kRuntime, "libwebp: " + failure);
  }
  std::string bytes(reinterpret_cast<const char*>(data.bytes), data.size);
  WebPDataClear(&data);
  return bytes;
}

#else

bool webp_supported() { return false; }

std::string encode_webp_animation(const FrameSource&, bool) {
  require_webp();
  return "";
}

void require_webp() {
  throw Error(ErrorKind::kRuntime,
              "this build has no libwebp (install libwebp-dev and rebuild), so it cannot write "
              "animated WebP; --png-frames DIR writes the frames as PNGs");
}

#endif

}  // namespace anagram
