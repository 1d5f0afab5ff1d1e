// anagram animate: frames end exactly on each view's picture; the WebP and the MP4 decode back
// (libwebp's and FFmpeg's own decoders) with the expected frame count and size; captions use the
// TrueType font (through FreeType, which survives truncated fonts); frames are drawn on demand
// and their number times their size is bounded before any is drawn; PNG frames appear as a
// whole folder or not at all.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "anagram/core/error.h"
#include "anagram/io/animation.h"
#include "anagram/io/video.h"
#include "anagram/io/view_picture.h"
#include "anagram/views/views.h"

// Defined by tests/CMakeLists.txt when the program was built with the library.
#ifdef ANAGRAM_TEST_WEBP
#include <webp/demux.h>
#endif
#ifdef ANAGRAM_TEST_FFMPEG
extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libswscale/swscale.h>
}
#endif

namespace anagram {
namespace {

RgbImage test_picture(int size) {
  RgbImage image;
  image.width = image.height = size;
  for (int y = 0; y < size; ++y) {
    for (int x = 0; x < size; ++x) {
      image.pixels.push_back(static_cast<uint8_t>(x * 255 / (size - 1)));
      image.pixels.push_back(static_cast<uint8_t>(y * 255 / (size - 1)));
      image.pixels.push_back(static_cast<uint8_t>((x * 7 + y * 13) % 256));
    }
  }
  return image;
}

// The picture area (side d, centred on the square stage) of a frame.
RgbImage picture_area(const RgbImage& frame, int d) {
  const int offset = (frame.width - d) / 2;
  RgbImage out;
  out.width = out.height = d;
  for (int y = 0; y < d; ++y) {
    const uint8_t* row =
        &frame.pixels[(static_cast<size_t>(y + offset) * frame.width + offset) * 3];
    out.pixels.insert(out.pixels.end(), row, row + d * 3);
  }
  return out;
}

AnimationOptions small_options() {
  AnimationOptions o;
  o.display_size = 64;
  o.transition_frames = 5;
  o.hold_frames = 2;
  return o;
}

TEST(Animation, EveryMoveEndsOnTheViewsPicture) {
  const RgbImage picture = test_picture(64);
  const AnimationOptions o = small_options();
  for (const char* name : {"rotate_cw", "rotate_ccw", "rotate_180", "flip", "mirror", "jigsaw",
                           "negate", "patch_permute"}) {
    const std::vector<Task> tasks = {{make_view("identity"), "a dog"}, {make_view(name), "a cat"}};
    const Animation a = animate_tasks(picture, tasks, nullptr, o);
    ASSERT_EQ(a.frames.size(), 2u * (2 + 5)) << name;
    const RgbImage first = picture_area(a.frames[0], 64);
    EXPECT_EQ(first.pixels, picture.pixels) << name << ": the move starts upright";
    const RgbImage end = picture_area(a.frames[o.hold_frames + o.transition_frames - 1], 64);
    EXPECT_EQ(end.pixels, view_of(*tasks[1].view, picture).pixels) << name << ": ends on the view";
    const RgbImage back = picture_area(a.frames.back(), 64);
    EXPECT_EQ(back.pixels, picture.pixels) << name << ": and comes back";
    // Half-way, the picture is neither.
    const RgbImage middle = picture_area(a.frames[o.hold_frames + 2], 64);
    EXPECT_NE(middle.pixels, picture.pixels) << name;
  }
}

// Factorized views as Factorized Diffusion animates them: the frames at rest are the picture;
// a hybrid's far end is the picture shrunk to an eighth by averaging (each shown pixel the mean
// of an 8x8 block); grayscale ends on the channel mean; motion shakes (frames at full swing
// differ from each other and from the picture).
TEST(Animation, FactorizedViewsZoomFadeAndShake) {
  const RgbImage picture = test_picture(64);
  const AnimationOptions o = small_options();  // hold 2, move 5: frames 0-1 rest, 6-8 at t = 1
  const auto frames_of = [&](const char* moving, const char* still) {
    return animate_tasks(picture, {{make_view(moving), "far"}, {make_view(still), "near"}}, nullptr,
                         o);
  };
  const Animation zoom = frames_of("low_pass", "high_pass");
  ASSERT_EQ(zoom.frames.size(), 2u * (2 + 5));
  EXPECT_EQ(picture_area(zoom.frames[0], 64).pixels, picture.pixels);
  const RgbImage far = picture_area(zoom.frames[6], 64);
  for (const auto& [bx, by] : {std::pair{0, 0}, {3, 5}, {7, 7}}) {
    for (int k = 0; k < 3; ++k) {
      double sum = 0;
      for (int y = 0; y < 8; ++y)
        for (int x = 0; x < 8; ++x)
          sum += picture.pixels[(static_cast<size_t>(by * 8 + y) * 64 + bx * 8 + x) * 3 + k];
      const size_t shown = (static_cast<size_t>(28 + by) * 64 + 28 + bx) * 3 + k;
      EXPECT_EQ(far.pixels[shown], static_cast<uint8_t>(std::lround(sum / 64))) << bx << by;
    }
  }
  EXPECT_EQ(far.pixels[0], 255);  // white around the far picture

  const RgbImage gray = picture_area(frames_of("grayscale", "color").frames[6], 64);
  for (size_t i = 0; i < gray.pixels.size(); i += 3 * 97) {
    const double mean = (picture.pixels[i] + picture.pixels[i + 1] + picture.pixels[i + 2]) / 3.0;
    for (int k = 0; k < 3; ++k) EXPECT_EQ(gray.pixels[i + k], std::lround(mean)) << i;
  }

  const Animation shake = frames_of("motion", "motion_res");
  EXPECT_EQ(picture_area(shake.frames[0], 64).pixels, picture.pixels);
  EXPECT_NE(shake.frames[6].pixels, shake.frames[7].pixels);
  EXPECT_NE(picture_area(shake.frames[7], 64).pixels, picture.pixels);

  // Components seen as the picture is do not move: nothing to animate, one line.
  try {
    animate_tasks(picture, {{make_view("scale"), "a"}, {make_view("scale"), "b"}}, nullptr, o);
    FAIL() << "scale views were animated";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("nothing moves"), std::string::npos) << e.what();
  }
}

TEST(Animation, FramesPerViewAndBadOptions) {
  const RgbImage picture = test_picture(64);
  const std::vector<Task> three = {
      {make_view("identity"), "a"}, {make_view("rot90"), "b"}, {make_view("flip"), "c"}};
  AnimationOptions o = small_options();
  o.display_size = 128;
  const Animation a = animate_tasks(picture, three, nullptr, o);
  EXPECT_EQ(a.frames.size(), 2u * 2 * (2 + 5));
  EXPECT_EQ(a.frames[0].width, 192);   // 1.5 x 128, room to turn
  EXPECT_GT(a.frames[0].height, 192);  // and the caption band
  o.display_size = 100;                // not a multiple of 64
  EXPECT_THROW(animate_tasks(picture, three, nullptr, o), Error);
  o = small_options();
  o.transition_frames = 0;
  EXPECT_THROW(animate_tasks(picture, three, nullptr, o), Error);
  EXPECT_THROW(animate_tasks(picture, {{make_view("identity"), "a"}}, nullptr, small_options()),
               Error);
}

TEST(Animation, TrueTypeCaptions) {
  const auto path = CaptionFont::default_path();
  if (!path) GTEST_SKIP() << "no DejaVu Sans (fonts-dejavu-core)";
  const CaptionFont font = CaptionFont::load(*path);
  const RgbImage picture = test_picture(64);
  const std::vector<Task> tasks = {{make_view("identity"), "a dog"},
                                   {make_view("rot180"), "a cat, übermäßig"}};
  const Animation a = animate_tasks(picture, tasks, &font, small_options());
  const auto band = [](const RgbImage& frame) {
    const size_t start = static_cast<size_t>(frame.width) * frame.width * 3;  // below the stage
    return std::vector<uint8_t>(frame.pixels.begin() + static_cast<long>(start),
                                frame.pixels.end());
  };
  const std::vector<uint8_t> first = band(a.frames[0]);
  const std::vector<uint8_t> end = band(a.frames[2 + 5 - 1]);
  EXPECT_LT(*std::min_element(first.begin(), first.end()), 64) << "dark ink in the caption";
  EXPECT_NE(first, end) << "the caption changes with the view";
  EXPECT_THROW(CaptionFont::load("/nonexistent/font.ttf"), Error);
}

TEST(Animation, WebPDecodesBack) {
  if (!webp_supported()) GTEST_SKIP() << "built without libwebp";
#ifdef ANAGRAM_TEST_WEBP
  const RgbImage picture = test_picture(64);
  const std::vector<Task> tasks = {{make_view("identity"), "a"}, {make_view("jigsaw"), "b"}};
  const Animation a = animate_tasks(picture, tasks, nullptr, small_options());
  const std::string bytes = encode_webp_animation(a, /*lossless=*/true);
  EXPECT_EQ(bytes, encode_webp_animation(a, true)) << "deterministic";
  WebPData data{reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()};
  WebPAnimDecoderOptions options;
  ASSERT_TRUE(WebPAnimDecoderOptionsInit(&options));
  options.color_mode = MODE_RGBA;
  WebPAnimDecoder* decoder = WebPAnimDecoderNew(&data, &options);
  ASSERT_NE(decoder, nullptr);
  WebPAnimInfo info;
  ASSERT_TRUE(WebPAnimDecoderGetInfo(decoder, &info));
  // The encoder keeps a run of identical frames (the holds) as one longer frame.
  size_t distinct = 1;
  for (size_t i = 1; i < a.frames.size(); ++i)
    distinct += a.frames[i].pixels != a.frames[i - 1].pixels;
  EXPECT_EQ(info.frame_count, distinct);
  EXPECT_EQ(static_cast<int>(info.canvas_width), a.frames[0].width);
  EXPECT_EQ(static_cast<int>(info.canvas_height), a.frames[0].height);
  EXPECT_EQ(info.loop_count, 0u);
  uint8_t* rgba = nullptr;
  int timestamp = 0;
  ASSERT_TRUE(WebPAnimDecoderGetNext(decoder, &rgba, &timestamp));
  EXPECT_EQ(timestamp, 2 * a.frame_ms);  // the first hold: two frames

  bool same = true;  // lossless: the first frame comes back exactly
  for (size_t p = 0; p < a.frames[0].pixels.size() / 3; ++p) {
    for (int k = 0; k < 3; ++k) same &= rgba[p * 4 + k] == a.frames[0].pixels[p * 3 + k];
  }
  EXPECT_TRUE(same);
  int last = timestamp;
  while (WebPAnimDecoderGetNext(decoder, &rgba, &last)) {
  }
  EXPECT_EQ(last, static_cast<int>(a.frames.size()) * a.frame_ms) << "the whole length";
  WebPAnimDecoderDelete(decoder);
#endif
}

#ifdef ANAGRAM_TEST_FFMPEG

struct Decoded {
  int frames = 0;
  int width = 0, height = 0;
  RgbImage first;  // the first frame, back in RGB
};

// Reads an MP4 from memory with FFmpeg's own demuxer and decoder.
struct MemoryReader {
  const std::string* bytes;
  int64_t pos = 0;
  static int read(void* opaque, uint8_t* buffer, int size) {
    auto* r = static_cast<MemoryReader*>(opaque);
    const int64_t left = static_cast<int64_t>(r->bytes->size()) - r->pos;
    if (left <= 0) return AVERROR_EOF;
    const int n = static_cast<int>(std::min<int64_t>(size, left));
    std::memcpy(buffer, r->bytes->data() + r->pos, static_cast<size_t>(n));
    r->pos += n;
    return n;
  }
  static int64_t seek(void* opaque, int64_t offset, int whence) {
    auto* r = static_cast<MemoryReader*>(opaque);
    const auto size = static_cast<int64_t>(r->bytes->size());
    if ((whence & ~AVSEEK_FORCE) == AVSEEK_SIZE) return size;
    whence &= ~AVSEEK_FORCE;
    const int64_t to = whence == SEEK_SET   ? offset
                       : whence == SEEK_CUR ? r->pos + offset
                                            : size + offset;
    if (to < 0 || to > size) return AVERROR(EINVAL);
    return r->pos = to;
  }
};

Decoded decode_mp4(const std::string& bytes) {
  Decoded out;
  MemoryReader reader{&bytes};
  constexpr int kBuffer = 4096;
  AVIOContext* io = avio_alloc_context(static_cast<unsigned char*>(av_malloc(kBuffer)), kBuffer, 0,
                                       &reader, MemoryReader::read, nullptr, MemoryReader::seek);
  AVFormatContext* format = avformat_alloc_context();
  format->pb = io;
  format->flags |= AVFMT_FLAG_CUSTOM_IO;
  if (avformat_open_input(&format, nullptr, nullptr, nullptr) == 0 &&
      avformat_find_stream_info(format, nullptr) >= 0 && format->nb_streams == 1) {
    EXPECT_STREQ(format->iformat->name, "mov,mp4,m4a,3gp,3g2,mj2");
    const AVCodecParameters* parameters = format->streams[0]->codecpar;
    const AVCodec* codec = avcodec_find_decoder(parameters->codec_id);
    AVCodecContext* decoder = avcodec_alloc_context3(codec);
    AVPacket* packet = av_packet_alloc();
    AVFrame* frame = av_frame_alloc();
    const auto take = [&]() {
      while (avcodec_receive_frame(decoder, frame) == 0) {
        if (out.frames++ == 0) {
          out.width = frame->width;
          out.height = frame->height;
          out.first.width = frame->width;
          out.first.height = frame->height;
          out.first.pixels.resize(static_cast<size_t>(frame->width) * frame->height * 3);
          // SWS_ACCURATE_RND: swscale's fast yuv -> RGB path leaves the last columns of
          // widths like 66 unconverted.
          SwsContext* to_rgb =
              sws_getContext(frame->width, frame->height, static_cast<AVPixelFormat>(frame->format),
                             frame->width, frame->height, AV_PIX_FMT_RGB24,
                             SWS_BILINEAR | SWS_ACCURATE_RND, nullptr, nullptr, nullptr);
          uint8_t* planes[] = {out.first.pixels.data()};
          const int strides[] = {frame->width * 3};
          sws_scale(to_rgb, frame->data, frame->linesize, 0, frame->height, planes, strides);
          sws_freeContext(to_rgb);
        }
      }
    };
    if (avcodec_parameters_to_context(decoder, parameters) >= 0 &&
        avcodec_open2(decoder, codec, nullptr) == 0) {
      while (av_read_frame(format, packet) >= 0) {
        avcodec_send_packet(decoder, packet);
        av_packet_unref(packet);
        take();
      }
      avcodec_send_packet(decoder, nullptr);  // the frames still held back (B-frames)
      take();
    }
    av_frame_free(&frame);
    av_packet_free(&packet);
    avcodec_free_context(&decoder);
  } else {
    ADD_FAILURE() << "FFmpeg cannot read the MP4 back";
  }
  avformat_close_input(&format);
  av_freep(&io->buffer);
  avio_context_free(&io);
  return out;
}

// Mean of each colour over the top-left width x height of an image.
std::array<double, 3> mean_colour(const RgbImage& image, int width, int height) {
  std::array<double, 3> sum = {0, 0, 0};
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      for (int k = 0; k < 3; ++k)
        sum[k] += image.pixels[(static_cast<size_t>(y) * image.width + x) * 3 + k];
    }
  }
  for (double& s : sum) s /= static_cast<double>(width) * height;
  return sum;
}

#endif

TEST(Animation, Mp4DecodesBack) {
  if (!mp4_supported()) {
    EXPECT_THROW(require_mp4(), Error);
    GTEST_SKIP() << "built without FFmpeg";
  }
#ifdef ANAGRAM_TEST_FFMPEG
  // An animation as `anagram animate` makes it (96 x 120 frames), and one by hand of odd sides,
  // which the encoder pads to even ones.
  const RgbImage picture = test_picture(64);
  const std::vector<Task> tasks = {{make_view("identity"), "a"}, {make_view("rot90"), "b"}};
  Animation odd;
  for (int i = 0; i < 6; ++i) {
    RgbImage frame;
    frame.width = 65;
    frame.height = 67;
    for (int y = 0; y < frame.height; ++y) {
      for (int x = 0; x < frame.width; ++x) {
        frame.pixels.push_back(static_cast<uint8_t>(x * 3 + i * 10));
        frame.pixels.push_back(static_cast<uint8_t>(y * 3));
        frame.pixels.push_back(static_cast<uint8_t>(200 - i * 20));
      }
    }
    odd.frames.push_back(frame);
  }
  for (const Animation& a : {animate_tasks(picture, tasks, nullptr, small_options()), odd}) {
    const int width = a.frames[0].width, height = a.frames[0].height;
    const std::string bytes = encode_mp4_animation(a);
    EXPECT_EQ(bytes, encode_mp4_animation(a)) << "deterministic";
    ASSERT_GT(bytes.size(), 8u);
    EXPECT_EQ(bytes.substr(4, 4), "ftyp");
    const Decoded decoded = decode_mp4(bytes);
    EXPECT_EQ(decoded.frames, static_cast<int>(a.frames.size())) << width << "x" << height;
    EXPECT_EQ(decoded.width, (width + 1) / 2 * 2);
    EXPECT_EQ(decoded.height, (height + 1) / 2 * 2);
    if (decoded.frames == 0) continue;
    const auto source = mean_colour(a.frames[0], width, height);
    const auto back = mean_colour(decoded.first, width, height);
    for (int k = 0; k < 3; ++k) EXPECT_NEAR(back[k], source[k], 3.0) << "channel " << k;
  }
  EXPECT_THROW(encode_mp4_animation(Animation{}), Error);
  Animation mixed = odd;
  mixed.frames.push_back(test_picture(64));
  EXPECT_THROW(encode_mp4_animation(mixed), Error);
#endif
}

TEST(Animation, SizeIsBoundedBeforeAnyFrameIsDrawn) {
  const RgbImage picture = test_picture(64);
  const std::vector<Task> tasks = {{make_view("identity"), "a"}, {make_view("rot90"), "b"}};
  AnimationOptions o;
  o.display_size = 2048;
  o.transition_frames = 1000;
  o.hold_frames = 1000;
  const auto start = std::chrono::steady_clock::now();
  try {
    plan_animation(picture, tasks, nullptr, o);
    FAIL() << "4000 frames of 3072x3482 planned";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("too many"), std::string::npos) << e.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  // The same frames on demand as all at once.
  const AnimationPlan plan = plan_animation(picture, tasks, nullptr, small_options());
  const Animation held = animate_tasks(picture, tasks, nullptr, small_options());
  ASSERT_EQ(plan.frame_count(), held.frames.size());
  for (size_t i = 0; i < plan.frame_count(); ++i) {
    EXPECT_EQ(plan.frame(i).pixels, held.frames[i].pixels) << i;
  }
  if (webp_supported()) EXPECT_EQ(encode_webp_animation(plan), encode_webp_animation(held));
}

TEST(Animation, PngFramesAppearWholeOrNotAtAll) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("anagram_frames_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const RgbImage picture = test_picture(64);
  const std::vector<Task> tasks = {{make_view("identity"), "a"}, {make_view("rot90"), "b"}};
  const AnimationPlan plan = plan_animation(picture, tasks, nullptr, small_options());
  write_png_frames(plan, dir / "frames");
  size_t frames = 0;
  for (auto it = fs::directory_iterator(dir / "frames"); it != fs::directory_iterator(); ++it) {
    ++frames;
  }
  EXPECT_EQ(frames, plan.frame_count());
  EXPECT_THROW(write_png_frames(plan, dir / "frames"), Error) << "never replaces a folder";
  // Past a file size limit: an error, and neither the folder nor a temporary one is left.
  std::signal(SIGXFSZ, SIG_IGN);
  rlimit old{};
  getrlimit(RLIMIT_FSIZE, &old);
  rlimit limit = old;
  limit.rlim_cur = 2000;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &limit), 0);
  EXPECT_THROW(write_png_frames(plan, dir / "limited"), Error);
  setrlimit(RLIMIT_FSIZE, &old);
  size_t entries = 0;
  for (auto it = fs::directory_iterator(dir); it != fs::directory_iterator(); ++it) ++entries;
  EXPECT_EQ(entries, 1u) << "only the first folder";
  fs::remove_all(dir);
}

TEST(Animation, TruncatedAndDamagedFontsAreNotACrash) {
  const auto path = CaptionFont::default_path();
  if (!path) GTEST_SKIP() << "no FreeType or no DejaVu Sans";
  std::ifstream in(*path, std::ios::binary);
  std::ostringstream whole;
  whole << in.rdbuf();
  const std::string font = whole.str();
  RgbImage canvas;
  canvas.width = 200;
  canvas.height = 60;
  canvas.pixels.assign(200 * 60 * 3, 255);
  std::vector<std::string> damaged;
  for (size_t cut : {12, 100, 1000, 10000, 50000, 120000, 300000, 600000}) {
    if (cut < font.size()) damaged.push_back(font.substr(0, cut));
  }
  for (size_t at = 1000; at < font.size(); at += font.size() / 7) {
    std::string flipped = font;
    for (size_t k = at; k < std::min(font.size(), at + 64); ++k) flipped[k] ^= 0x5a;
    damaged.push_back(flipped);
  }
  for (const std::string& bytes : damaged) {
    try {
      const CaptionFont f = CaptionFont::from_bytes(bytes, "damaged.ttf");
      f.draw_centered(canvas, "a cat, \xc3\xbc", 0, 0, 200, 60, 1.0f);
    } catch (const Error&) {
      // Refused: as good as drawn.
    }
  }
  EXPECT_THROW(CaptionFont::from_bytes("tiny", "tiny.ttf"), Error);
}

}  // namespace
}  // namespace anagram
