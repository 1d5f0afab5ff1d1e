// anagram/io/video.cpp: MP4 through FFmpeg's libraries, built in memory so the caller writes
// the file atomically like any other output.
#include "anagram/io/video.h"

#include "anagram/core/error.h"

#ifdef ANAGRAM_HAVE_FFMPEG
#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/cpu.h>
#include <libavutil/error.h>
#include <libavutil/log.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
}
#endif

namespace anagram {

#ifdef ANAGRAM_HAVE_FFMPEG

namespace {

[[noreturn]] void fail(const std::string& what, int code) {
  char text[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(code, text, sizeof text);
  throw Error(ErrorKind::kRuntime, "mp4: " + what + ": " + text);
}

int check(int code, const char* what) {
  if (code < 0) fail(what, code);
  return code;
}

// Owners for FFmpeg's objects, so an exception anywhere frees everything.
struct FreeCodec {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct FreeFrame {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct FreePacket {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct FreeFormat {
  void operator()(AVFormatContext* f) const { avformat_free_context(f); }
};
struct FreeIo {
  // The buffer is FFmpeg's (it may have replaced the one given), freed with the context.
  void operator()(AVIOContext* io) const {
    av_freep(&io->buffer);
    avio_context_free(&io);
  }
};
struct FreeSws {
  void operator()(SwsContext* s) const { sws_freeContext(s); }
};
using CodecPtr = std::unique_ptr<AVCodecContext, FreeCodec>;

// The file grows in memory. The MP4 muxer writes the sample tables (moov) last and then seeks
// back to fill in the media box's size, so writes may land before the end.
struct MemoryFile {
  std::string bytes;
  int64_t pos = 0;
};

// FFmpeg 7 (libavformat 61) made the written buffer const.
#if LIBAVFORMAT_VERSION_MAJOR >= 61
using WriteBuffer = const uint8_t*;
#else
using WriteBuffer = uint8_t*;
#endif

int write_bytes(void* opaque, WriteBuffer buffer, int size) {
  auto* file = static_cast<MemoryFile*>(opaque);
  const size_t end = static_cast<size_t>(file->pos) + static_cast<size_t>(size);
  if (end > file->bytes.size()) file->bytes.resize(end);
  std::memcpy(&file->bytes[static_cast<size_t>(file->pos)], buffer, static_cast<size_t>(size));
  file->pos = static_cast<int64_t>(end);
  return size;
}

int64_t seek_bytes(void* opaque, int64_t offset, int whence) {
  auto* file = static_cast<MemoryFile*>(opaque);
  const auto size = static_cast<int64_t>(file->bytes.size());
  switch (whence & ~AVSEEK_FORCE) {
    case AVSEEK_SIZE:
      return size;
    case SEEK_SET:
      break;
    case SEEK_CUR:
      offset += file->pos;
      break;
    case SEEK_END:
      offset += size;
      break;
    default:
      return AVERROR(EINVAL);
  }
  if (offset < 0) return AVERROR(EINVAL);
  file->pos = offset;
  return offset;
}

// An encoder opened for frames of width x height, each lasting frame_ms: libx264 where FFmpeg
// has it (the best quality per byte), else whatever H.264 encoder it has, else MPEG-4 Part 2 so
// a build of FFmpeg without H.264 still writes a playable file. One that will not open (e.g. a
// hardware encoder without its hardware) gives way to the next.
CodecPtr open_encoder(int width, int height, int frame_ms, bool global_header) {
  const AVCodec* candidates[] = {avcodec_find_encoder_by_name("libx264"),
                                 avcodec_find_encoder(AV_CODEC_ID_H264),
                                 avcodec_find_encoder_by_name("mpeg4")};
  int last_error = AVERROR_ENCODER_NOT_FOUND;
  for (const AVCodec* codec : candidates) {
    if (codec == nullptr) continue;
    CodecPtr ctx(avcodec_alloc_context3(codec));
    if (!ctx) fail("cannot allocate the encoder", AVERROR(ENOMEM));
    ctx->width = width;
    ctx->height = height;
    ctx->pix_fmt = AV_PIX_FMT_YUV420P;
    // One tick a frame: the frames' own clock, nothing from the wall clock.
    ctx->time_base = AVRational{frame_ms, 1000};
    ctx->framerate = AVRational{1000, frame_ms};
    // swscale's RGB -> YUV is BT.601, limited range; say so, or players guess BT.709 for
    // large frames and shift the colours.
    ctx->colorspace = AVCOL_SPC_SMPTE170M;
    ctx->color_primaries = AVCOL_PRI_SMPTE170M;
    ctx->color_trc = AVCOL_TRC_SMPTE170M;
    ctx->color_range = AVCOL_RANGE_MPEG;
    // One thread and bit-exact mode: the same frames give the same bytes.
    ctx->thread_count = 1;
    ctx->flags |= AV_CODEC_FLAG_BITEXACT;
    if (global_header) ctx->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    if (std::strcmp(codec->name, "libx264") == 0) {
      // crf 18: near-transparent; the pictures' fine detail is the point.
      check(av_opt_set(ctx->priv_data, "preset", "medium", 0), "libx264 preset");
      check(av_opt_set(ctx->priv_data, "crf", "18", 0), "libx264 crf");
      // x264's AVX-512 code (seen with r3095, in its macroblock-tree rate control) reads memory
      // it never wrote when the width is not a multiple of 128, so the same frames gave other
      // bytes from run to run. Its AVX2 code does not, and every AVX-512 CPU has AVX2.
      // (mbtree=0 cures it too, at 10-40% larger files.)
      if (av_get_cpu_flags() & AV_CPU_FLAG_AVX512) {
        check(av_opt_set(ctx->priv_data, "x264-params", "asm=AVX2", 0), "libx264 asm");
      }
    } else if (codec->id == AV_CODEC_ID_MPEG4) {
      ctx->flags |= AV_CODEC_FLAG_QSCALE;  // constant quality, not the 200 kb/s default
      ctx->global_quality = FF_QP2LAMBDA * 3;
    } else {
      ctx->bit_rate = std::max<int64_t>(2000000, int64_t{width} * height * 1000 / frame_ms / 4);
    }
    last_error = avcodec_open2(ctx.get(), codec, nullptr);
    if (last_error >= 0) return ctx;
  }
  fail("no usable H.264 or MPEG-4 encoder", last_error);
}

// The MP4 muxer, writing into memory. Not copyable: the I/O context points at `file`.
struct Mp4Output {
  Mp4Output();
  Mp4Output(const Mp4Output&) = delete;
  Mp4Output& operator=(const Mp4Output&) = delete;

  std::unique_ptr<AVFormatContext, FreeFormat> format;
  MemoryFile file;
  std::unique_ptr<AVIOContext, FreeIo> io;
  AVStream* stream = nullptr;  // the video stream (the format's), once added
};

Mp4Output::Mp4Output() {
  {
    AVFormatContext* raw = nullptr;
    check(avformat_alloc_output_context2(&raw, nullptr, "mp4", nullptr), "no MP4 muxer");
    format.reset(raw);
  }
  constexpr int kIoBufferSize = 1 << 16;
  auto* io_buffer = static_cast<unsigned char*>(av_malloc(kIoBufferSize));
  if (io_buffer == nullptr) fail("cannot allocate the output buffer", AVERROR(ENOMEM));
  io.reset(
      avio_alloc_context(io_buffer, kIoBufferSize, 1, &file, nullptr, write_bytes, seek_bytes));
  if (!io) {
    av_free(io_buffer);
    fail("cannot allocate the output context", AVERROR(ENOMEM));
  }
  format->pb = io.get();
  format->flags |= AVFMT_FLAG_CUSTOM_IO | AVFMT_FLAG_BITEXACT;  // no library version strings
}

// Adds the video stream of `encoder`'s packets and writes the file's header.
void add_stream(Mp4Output& output, const AVCodecContext& encoder) {
  output.stream = avformat_new_stream(output.format.get(), nullptr);
  if (output.stream == nullptr) fail("cannot add the video stream", AVERROR(ENOMEM));
  check(avcodec_parameters_from_context(output.stream->codecpar, &encoder), "stream parameters");
  output.stream->time_base = encoder.time_base;
  output.stream->avg_frame_rate = encoder.framerate;
  check(avformat_write_header(output.format.get(), nullptr), "cannot write the header");
}

// The frames' sides, and the even sides the encoder is given.
struct Sides {
  int width, height, padded_width, padded_height;
};

// What each frame goes through: padded RGB -> yuv420p -> the encoder's packets.
struct FramePipe {
  std::unique_ptr<SwsContext, FreeSws> to_yuv;
  std::unique_ptr<AVFrame, FreeFrame> yuv;
  std::unique_ptr<AVPacket, FreePacket> packet;
  std::vector<uint8_t> rgb;
};

FramePipe open_frame_pipe(const Sides& sides) {
  const int padded_width = sides.padded_width, padded_height = sides.padded_height;
  FramePipe pipe;
  // Exact arithmetic: the same bytes on any CPU, and none of swscale's fast paths (some leave a
  // frame's last columns unconverted).
  pipe.to_yuv.reset(sws_getContext(padded_width, padded_height, AV_PIX_FMT_RGB24, padded_width,
                                   padded_height, AV_PIX_FMT_YUV420P,
                                   SWS_BILINEAR | SWS_ACCURATE_RND | SWS_BITEXACT, nullptr, nullptr,
                                   nullptr));
  if (!pipe.to_yuv) fail("cannot convert RGB to yuv420p", AVERROR(EINVAL));
  pipe.yuv.reset(av_frame_alloc());
  pipe.packet.reset(av_packet_alloc());
  if (!pipe.yuv || !pipe.packet) fail("cannot allocate a frame", AVERROR(ENOMEM));
  pipe.yuv->format = AV_PIX_FMT_YUV420P;
  pipe.yuv->width = padded_width;
  pipe.yuv->height = padded_height;
  check(av_frame_get_buffer(pipe.yuv.get(), 0), "cannot allocate a frame");
  // swscale's SIMD reads a few bytes past the last pixel: zeros there, not whatever the heap
  // held, or the same frames would not always give the same bytes.
  pipe.rgb.resize(static_cast<size_t>(padded_width) * padded_height * 3 +
                  AV_INPUT_BUFFER_PADDING_SIZE);
  return pipe;
}

// `frame` (width x height, checked) into pipe.yuv: odd sides padded with a copy of the edge.
void convert_frame(const RgbImage& frame, const Sides& sides, FramePipe& pipe) {
  const int width = sides.width, height = sides.height;
  const int padded_width = sides.padded_width, padded_height = sides.padded_height;
  const size_t row = static_cast<size_t>(width) * 3, padded_row = size_t{3} * padded_width;
  for (int y = 0; y < padded_height; ++y) {
    const uint8_t* from = &frame.pixels[std::min(y, height - 1) * row];
    uint8_t* to = &pipe.rgb[y * padded_row];
    std::copy(from, from + row, to);
    if (padded_width != width) std::copy(from + row - 3, from + row, to + row);
  }
  check(av_frame_make_writable(pipe.yuv.get()), "cannot reuse a frame");
  const uint8_t* planes[] = {pipe.rgb.data()};
  const int strides[] = {static_cast<int>(padded_row)};
  sws_scale(pipe.to_yuv.get(), planes, strides, 0, padded_height, pipe.yuv->data,
            pipe.yuv->linesize);
}

// Moves every packet the encoder has ready into the file.
void drain(AVCodecContext& encoder, AVPacket& packet, Mp4Output& output) {
  for (;;) {
    const int got = avcodec_receive_packet(&encoder, &packet);
    if (got == AVERROR(EAGAIN) || got == AVERROR_EOF) return;
    check(got, "encoding failed");
    if (packet.duration == 0) packet.duration = 1;  // one tick: the last frame's length
    av_packet_rescale_ts(&packet, encoder.time_base, output.stream->time_base);
    packet.stream_index = output.stream->index;
    check(av_interleaved_write_frame(output.format.get(), &packet), "cannot write a frame");
  }
}

// Writes the trailer (the MP4 sample tables) and hands over the file's bytes.
std::string finish(Mp4Output& output) {
  check(av_write_trailer(output.format.get()), "cannot finish the file");
  avio_flush(output.io.get());
  check(output.io->error, "cannot write the file");
  return std::move(output.file.bytes);
}

}  // namespace

bool mp4_supported() { return true; }

void require_mp4() {}

std::string encode_mp4_animation(const FrameSource& frames) {
  if (frames.frame_count() == 0) throw Error(ErrorKind::kInvalidArgument, "animate: no frames");
  // Frames are drawn one at a time and each is checked against the first.
  const RgbImage first = frames.frame(0);
  const int width = first.width, height = first.height;
  const auto check_size = [&](const RgbImage& frame) {
    if (frame.width != width || frame.height != height || width < 1 || height < 1 ||
        frame.pixels.size() != static_cast<size_t>(width) * height * 3) {
      throw Error(ErrorKind::kInvalidArgument, "animate: frames of different sizes");
    }
  };
  check_size(first);
  const int frame_ms = frames.frame_time_ms();
  if (frame_ms < 1) throw Error(ErrorKind::kInvalidArgument, "animate: bad frame time");
  // libx264 prints its statistics on stderr at the default level; failures still show (and
  // come back as Errors), the rest would bury the CLI's one-line messages.
  if (av_log_get_level() > AV_LOG_ERROR) av_log_set_level(AV_LOG_ERROR);
  // yuv420p halves the chroma both ways, so the encoders want even sides: an odd side gets one
  // more pixel, a copy of the edge (invisible, unlike a black or cropped line).
  const Sides sides{width, height, (width + 1) / 2 * 2, (height + 1) / 2 * 2};

  Mp4Output output;
  CodecPtr encoder = open_encoder(sides.padded_width, sides.padded_height, frame_ms,
                                  (output.format->oformat->flags & AVFMT_GLOBALHEADER) != 0);
  add_stream(output, *encoder);
  FramePipe pipe = open_frame_pipe(sides);
  for (size_t i = 0; i < frames.frame_count(); ++i) {
    const RgbImage frame = i == 0 ? first : frames.frame(i);
    check_size(frame);
    convert_frame(frame, sides, pipe);
    pipe.yuv->pts = static_cast<int64_t>(i);
    check(avcodec_send_frame(encoder.get(), pipe.yuv.get()), "encoding failed");
    drain(*encoder, *pipe.packet, output);
  }
  check(avcodec_send_frame(encoder.get(), nullptr), "cannot finish encoding");
  drain(*encoder, *pipe.packet, output);
  return finish(output);
}

#else

bool mp4_supported() { return false; }

void require_mp4() {
  throw Error(ErrorKind::kRuntime,
              "this build has no FFmpeg (install libavcodec-dev libavformat-dev libswscale-dev "
              "and rebuild), so it cannot write MP4; --out F.webp writes animated WebP");
}

std::string encode_mp4_animation(const FrameSource&) {
  require_mp4();
  return "";
}

#endif

}  // namespace anagram
