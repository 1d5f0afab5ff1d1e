// anagram animate: frames end exactly on each view's picture; the WebP decodes back (libwebp's
// own decoder) with the expected frame count and size; captions use the TrueType font.
#include <gtest/gtest.h>

#include "anagram/core/error.h"
#include "anagram/io/animation.h"
#include "anagram/views/views.h"

#if __has_include(<webp/demux.h>)
#include <webp/demux.h>
#define ANAGRAM_TEST_WEBP 1
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

}  // namespace
}  // namespace anagram
