// anagram/io/video.h: an Animation as an MP4 video (H.264), for players and sites that take
// video but not animated WebP. Written with FFmpeg's libraries where the build has them.
//
//   anagram::require_mp4();  // before any work
//   anagram::write_file_atomic("dog-cat.mp4", anagram::encode_mp4_animation(plan));
#pragma once

#include <string>

#include "anagram/io/animation.h"

namespace anagram {

// Whether this build can write MP4 (it needs libavcodec, libavformat, libswscale, libavutil).
bool mp4_supported();
// Throws Error(kRuntime) saying how to get MP4 support unless mp4_supported(); for checking
// before any work.
void require_mp4();
// The MP4 file's bytes: H.264 (libx264 where FFmpeg has it; otherwise its H.264 encoder, or
// MPEG-4 Part 2) in yuv420p, one frame per animation frame lasting frame_time_ms; frames are
// drawn and encoded one at a time. Odd frame sides
// are padded by one pixel (repeating the edge), as yuv420p needs even sides. Deterministic for
// the same frames, FFmpeg build and CPU kind (the SIMD code differs between CPUs). Throws
// Error(kInvalidArgument) for an empty animation or frames of different sizes, Error(kRuntime) if
// FFmpeg fails or !mp4_supported().
std::string encode_mp4_animation(const FrameSource& frames);

}  // namespace anagram
