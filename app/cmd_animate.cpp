// anagram animate SAMPLE: the anagram in motion (animated WebP, MP4, or PNG frames).
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>

#include "anagram/core/error.h"
#include "anagram/core/error_text.h"
#include "anagram/io/animation.h"
#include "anagram/io/image_io.h"
#include "anagram/io/video.h"
#include "anagram/pipeline/sample_record.h"
#include "commands.h"

namespace anagram::cli {
namespace {

namespace fs = std::filesystem;

std::string default_name(const SampleRecord& sample) {
  return "animation_" + std::to_string(sample.picture_size) + ".webp";
}

enum class Format { kWebp, kMp4 };

// The file's extension says what to write, so the name and the contents cannot disagree.
Format format_of(const fs::path& out) {
  std::string extension = out.extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (extension == ".webp") return Format::kWebp;
  if (extension == ".mp4") return Format::kMp4;
  throw Error(ErrorKind::kInvalidArgument, "out",
              "'" + quote_for_error(out.string()) +
                  "' must end in .webp or .mp4 (animated WebP or H.264 video)");
}

struct AnimateOptions {
  std::string sample;
  std::string out;
  std::string png_frames;
  std::string font;
  int size = 0;
  int display = 0;
  int frames = 36;
  int hold = 12;
  int fps = 25;
  bool lossless = false;
  bool force = false;
};

int run_animate(const AnimateOptions& o, const GlobalOptions& global) {
  // Checked first: a wrong name is the user's to fix before anything is read.
  const Format format = o.out.empty() || !o.png_frames.empty() ? Format::kWebp : format_of(o.out);
  const SampleRecord sample = read_sample_record(o.sample, o.size);
  const fs::path out = !o.out.empty() ? fs::path(o.out) : sample.folder / default_name(sample);
  std::error_code ec;
  if (o.png_frames.empty()) {
    if (format == Format::kMp4) {
      require_mp4();
      if (o.lossless) {
        throw Error(ErrorKind::kInvalidArgument, "lossless", "is for WebP; MP4 is always lossy");
      }
    } else {
      require_webp();
    }
    refuse_existing_output(out.string(), "out", o.force);
  } else if (fs::exists(fs::symlink_status(o.png_frames, ec))) {
    throw Error(ErrorKind::kInvalidArgument, "png-frames",
                "'" + quote_for_error(o.png_frames) + "' exists; give a new folder");
  }
  std::optional<CaptionFont> font;
  if (!o.font.empty()) {
    font = CaptionFont::load(o.font);
  } else if (const auto path = CaptionFont::default_path()) {
    font = CaptionFont::load(*path);
  } else if (!global.quiet) {
    std::cerr << (CaptionFont::supported()
                      ? "anagram: warning: no TrueType font found (install fonts-dejavu-core or "
                        "pass --font); captions use the bitmap font\n"
                      : "anagram: warning: built without FreeType; captions use the bitmap "
                        "font\n");
  }
  const RgbImage picture = read_png(sample.picture);
  AnimationOptions options;
  options.display_size =
      o.display > 0 ? o.display : std::max(picture.width, 256 / picture.width * picture.width);
  options.transition_frames = o.frames;
  options.hold_frames = o.hold;
  options.frame_ms = 1000 / o.fps;
  const AnimationPlan plan =
      plan_animation(picture, sample.tasks, font ? &*font : nullptr, options);
  if (!o.png_frames.empty()) {
    write_png_frames(plan, o.png_frames);
    std::printf("%s\n", o.png_frames.c_str());
  } else {
    write_file_atomic(out, format == Format::kMp4 ? encode_mp4_animation(plan)
                                                  : encode_webp_animation(plan, o.lossless));
    std::printf("%s\n", out.string().c_str());
  }
  if (!global.quiet) {
    std::fprintf(stderr, "animate: %zu frames of %dx%d, %d ms each\n", plan.frame_count(),
                 plan.width(), plan.height(), plan.frame_time_ms());
  }
  return 0;
}

}  // namespace

Runner add_animate_command(CLI::App& app, const GlobalOptions& global) {
  auto o = std::make_shared<AnimateOptions>();
  CLI::App* cmd = app.add_subcommand(
      "animate", "Animate a sample: the picture turns, flips or rearranges into each view");
  cmd->footer(
      "Rotations turn, flip/mirror turn over, jigsaw pieces move to their places; other views\n"
      "cross-fade. Captions show the prompt of what is seen (DejaVu Sans, or --font).\n"
      "Writes SAMPLE/animation_<size>.webp unless --out or --png-frames says otherwise;\n"
      "--out F.mp4 writes an H.264 MP4 video instead (builds with FFmpeg). An existing file\n"
      "is kept unless --force.");
  cmd->add_option("sample", o->sample, "A sample folder written by gen or batch")->required();
  cmd->add_option("-o,--out", o->out,
                  "The file to write: F.webp (animated WebP) or F.mp4 (H.264 video)");
  cmd->add_option("--png-frames", o->png_frames,
                  "Write the frames as frame_NNNN.png into this new folder instead");
  cmd->add_option("--size", o->size,
                  "Which stage's picture: its side (64, 256, 1024); 0 = the last")
      ->capture_default_str();
  cmd->add_option("--display", o->display,
                  "Side of the picture in the frames, a multiple of its side (default: 256, or "
                  "the picture's side if larger)");
  cmd->add_option("--frames", o->frames, "Frames per move")->capture_default_str();
  cmd->add_option("--hold", o->hold, "Frames standing still before each move")
      ->capture_default_str();
  cmd->add_option("--fps", o->fps, "Frames a second")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  cmd->add_option("--font", o->font, "TrueType font for the captions");
  cmd->add_flag("--lossless", o->lossless, "Lossless WebP (larger; every pixel kept); not for MP4");
  cmd->add_flag("--force", o->force, "Replace an existing output file");

  return [o, &global]() { return run_animate(*o, global); };
}

}  // namespace anagram::cli
