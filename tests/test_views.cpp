// Tests of the views module: exact inverses, permutations, noise statistics, ViewStack,
// the registry, and golden images from scripts/golden/golden_views.py (published definitions).
#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "anagram/core/error.h"
#include "anagram/views/jigsaw.h"
#include "anagram/views/views.h"
#include "golden_io.h"
#include "views/view_util.h"

namespace anagram {
namespace {

// Same table as VIEWS in scripts/golden/golden_views.py: golden key -> (name, argument).
const std::map<std::string, std::pair<std::string, std::string>>& golden_views() {
  static const std::map<std::string, std::pair<std::string, std::string>> table = {
      {"identity", {"identity", ""}},
      {"negate", {"negate", ""}},
      {"flip", {"flip", ""}},
      {"mirror", {"mirror", ""}},
      {"rotate_cw", {"rotate_cw", ""}},
      {"rotate_ccw", {"rotate_ccw", ""}},
      {"rotate_180", {"rotate_180", ""}},
      {"skew", {"skew", ""}},
      {"skew_2", {"skew", "2"}},
      {"skew_m0p7", {"skew", "-0.7"}},
      {"patch_permute", {"patch_permute", ""}},
      {"patch_permute_4_7", {"patch_permute", "4,7"}},
      {"pixel_permute", {"pixel_permute", ""}},
      {"pixel_permute_5", {"pixel_permute", "5"}},
      {"inner_circle", {"inner_circle", ""}},
      {"square_hinge", {"square_hinge", ""}},
  };
  return table;
}

// Every registered view with its default argument, plus a few non-default arguments.
std::vector<ViewPtr> all_views() {
  std::vector<ViewPtr> views;
  for (const auto& info : list_views()) views.push_back(make_view(info.name));
  views.push_back(make_view("patch_permute", "4,3"));
  views.push_back(make_view("skew", "-2.25"));
  views.push_back(make_view("inner_circle", "0.5"));
  views.push_back(make_view("pixel_permute", "123"));
  return views;
}

// Views that are defined at SxS for every S used below, except pixel_permute (64 multiples).
bool expect_supported(const View& view, int64_t size) {
  return view.name() != "pixel_permute" || size % 64 == 0;
}

std::string where(const View& view, int64_t size, int64_t channels) {
  return view.spec() + " at " + std::to_string(size) + "x" + std::to_string(size) + ", " +
         std::to_string(channels) + " channels";
}

TEST(ViewsRegistry, ListsTheViewsOfThePaper) {
  std::vector<std::string> names;
  for (const auto& info : list_views()) {
    names.push_back(info.name);
    EXPECT_FALSE(info.description.empty()) << info.name;
    EXPECT_EQ(info.arg_help.empty(), info.arg_default.empty()) << info.name;
    EXPECT_EQ(make_view(info.name)->name(), info.name);
  }
  for (const char* expected :
       {"identity", "flip", "mirror", "rotate_cw", "rotate_ccw", "rotate_180", "negate", "skew",
        "patch_permute", "pixel_permute", "inner_circle", "square_hinge", "jigsaw"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), expected), names.end()) << expected;
  }
}

TEST(ViewsRegistry, AliasesResolve) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"id", "identity"},           {"vflip", "flip"},
      {"upside_down", "flip"},      {"hflip", "mirror"},
      {"rot90", "rotate_cw"},       {"cw", "rotate_cw"},
      {"rot270", "rotate_ccw"},     {"ccw", "rotate_ccw"},
      {"rot180", "rotate_180"},     {"neg", "negate"},
      {"ROTATE-180", "rotate_180"}, {"Patch-Permute", "patch_permute"},
      {"circle", "inner_circle"},   {"hinge", "square_hinge"},
      {"puzzle", "jigsaw"},
  };
  for (const auto& [alias, name] : cases) EXPECT_EQ(make_view(alias)->name(), name) << alias;
  // No two views share a name or alias.
  std::vector<std::string> keys;
  for (const auto& info : list_views()) {
    keys.push_back(info.name);
    keys.insert(keys.end(), info.aliases.begin(), info.aliases.end());
  }
  std::sort(keys.begin(), keys.end());
  EXPECT_EQ(std::adjacent_find(keys.begin(), keys.end()), keys.end());
}

TEST(ViewsRegistry, UnknownNameSuggests) {
  for (const auto& [typo, suggestion] :
       std::vector<std::pair<std::string, std::string>>{{"rotate180", "rotate_180"},
                                                        {"rotat_cw", "rotate_cw"},
                                                        {"flp", "flip"},
                                                        {"patch_permut", "patch_permute"},
                                                        {"inner_cirle", "inner_circle"}}) {
    try {
      make_view(typo);
      FAIL() << typo << " was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
      const std::string message = e.what();
      EXPECT_NE(message.find("did you mean '" + suggestion + "'?"), std::string::npos) << message;
      EXPECT_NE(message.find("known views:"), std::string::npos) << message;
    }
  }
  try {
    make_view("zzzzzzzzzzzzzz");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).find("did you mean"), std::string::npos) << e.what();
  }
}

void expect_invalid(const std::string& name, const std::string& arg, const std::string& needle) {
  try {
    make_view(name, arg);
    FAIL() << name << ":" << arg << " was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(ViewsRegistry, BadArgumentsAreRejected) {
  expect_invalid("flip", "3", "takes no argument");
  expect_invalid("rotate_cw", "90", "takes no argument");
  expect_invalid("patch_permute", "abc", "must be an integer");
  expect_invalid("patch_permute", "0", "must be in [2,");
  expect_invalid("patch_permute", "-4", "must be in [2,");
  expect_invalid("patch_permute", "8,-1", "seed");
  expect_invalid("patch_permute", "8,1,2", "N or N,SEED");
  expect_invalid("pixel_permute", "x", "seed");
  expect_invalid("skew", "nan", "finite");
  expect_invalid("skew", "1.5x", "finite");
  expect_invalid("inner_circle", "0", "(0, 1]");
  expect_invalid("inner_circle", "2", "(0, 1]");
}

TEST(ViewsRegistry, SizeErrorsAreClear) {
  const ViewPtr five = make_view("patch_permute", "5");
  EXPECT_FALSE(five->supports_size(64, 64));
  try {
    five->apply(torch::zeros({3, 64, 64}));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    const std::string message = e.what();
    EXPECT_NE(message.find("5x5"), std::string::npos) << message;
    EXPECT_NE(message.find("64x64"), std::string::npos) << message;
  }
  EXPECT_THROW(ViewStack({five}, 64, 64, torch::kCPU), Error);
  EXPECT_TRUE(five->supports_size(40, 40));
  EXPECT_FALSE(make_view("rotate_cw")->supports_size(32, 64));
  EXPECT_FALSE(make_view("square_hinge")->supports_size(32, 64));
  EXPECT_TRUE(make_view("rotate_180")->supports_size(32, 64));
  EXPECT_FALSE(make_view("pixel_permute")->supports_size(32, 32));
  EXPECT_TRUE(make_view("pixel_permute")->supports_size(256, 256));
}

TEST(ViewsRegistry, SpecRoundTrips) {
  EXPECT_EQ(make_view("patch_permute")->spec(), "patch_permute:8,0");
  EXPECT_EQ(make_view("pixel_permute")->spec(), "pixel_permute:0");
  EXPECT_EQ(make_view("skew")->spec(), "skew:1.5");
  EXPECT_EQ(make_view("inner_circle")->spec(), "inner_circle:0.375");
  EXPECT_EQ(make_view("rot180")->spec(), "rotate_180");
  EXPECT_EQ(make_view("patch_permute", "4")->arg(), "4");
  EXPECT_EQ(make_view("patch_permute", "4")->spec(), "patch_permute:4,0");
  for (const auto& view : all_views()) {
    const ViewPtr again = make_view_from_spec(view->spec());
    EXPECT_EQ(again->spec(), view->spec());
    EXPECT_TRUE(torch::equal(again->source_index(64, 64), view->source_index(64, 64)))
        << view->spec();
  }
}

TEST(Views, SeededPermutationIsPinned) {
  const auto golden = testing::load_golden(ANAGRAM_GOLDEN_DIR "/views_64.pt");
  views_detail::SplitMix64 rng(0);
  const torch::Tensor expected = golden.at("splitmix_seed0");
  for (int64_t i = 0; i < expected.size(0); ++i) {
    EXPECT_EQ(static_cast<int64_t>(rng.next()), expected[i].item<int64_t>()) << i;
  }
  const std::vector<int64_t> perm = views_detail::seeded_permutation(10, 42);
  EXPECT_TRUE(torch::equal(torch::tensor(perm, torch::kInt64), golden.at("perm10_seed42")));
  EXPECT_FALSE(torch::equal(make_view("patch_permute", "8,1")->source_index(64, 64),
                            make_view("patch_permute", "8,2")->source_index(64, 64)));
}

TEST(Views, IndexMapIsAPermutation) {
  for (const auto& view : all_views()) {
    for (const int64_t size : {64, 32}) {
      if (!expect_supported(*view, size)) continue;
      const torch::Tensor index = view->source_index(size, size);
      ASSERT_EQ(index.scalar_type(), torch::kInt64);
      EXPECT_TRUE(torch::equal(std::get<0>(index.sort()), torch::arange(size * size)))
          << view->spec();
      const torch::Tensor inverse = view->inverse_source_index(size, size);
      EXPECT_TRUE(torch::equal(index.index_select(0, inverse), torch::arange(size * size)))
          << view->spec();
    }
  }
}

TEST(Views, InverseIsExact) {
  torch::manual_seed(0);
  for (const auto& view : all_views()) {
    for (const int64_t size : {64, 32}) {
      ASSERT_EQ(view->supports_size(size, size), expect_supported(*view, size)) << view->spec();
      if (!expect_supported(*view, size)) continue;
      for (const int64_t channels : {3, 6}) {
        const torch::Tensor x = torch::randn({channels, size, size});
        const std::string at = where(*view, size, channels);
        EXPECT_TRUE(torch::equal(view->inverse(view->apply(x)), x)) << at;
        EXPECT_TRUE(torch::equal(view->apply(view->inverse(x)), x)) << at;
        // Batched (B, C, H, W) input works the same.
        const torch::Tensor batch = torch::randn({2, channels, size, size});
        EXPECT_TRUE(torch::equal(view->inverse(view->apply(batch)), batch)) << at;
        EXPECT_TRUE(torch::equal(view->apply(batch)[1], view->apply(batch[1]))) << at;
      }
    }
  }
}

TEST(Views, OddAndNonSquareSizes) {
  torch::manual_seed(4);
  const std::vector<std::string> any_size = {"identity",   "negate", "flip",        "mirror",
                                             "rotate_180", "skew",   "inner_circle"};
  for (const auto& view : all_views()) {
    for (const auto& [h, w] :
         std::vector<std::pair<int64_t, int64_t>>{{48, 64}, {33, 33}, {1, 7}}) {
      const bool general =
          std::find(any_size.begin(), any_size.end(), view->name()) != any_size.end();
      if (general) EXPECT_TRUE(view->supports_size(h, w)) << view->spec() << " " << h << "x" << w;
      if (!view->supports_size(h, w)) continue;
      const torch::Tensor x = torch::randn({2, h, w});
      EXPECT_TRUE(torch::equal(view->inverse(view->apply(x)), x)) << view->spec();
      EXPECT_TRUE(torch::equal(std::get<0>(view->source_index(h, w).sort()), torch::arange(h * w)));
    }
  }
  EXPECT_TRUE(make_view("rot90")->supports_size(33, 33));
  EXPECT_TRUE(make_view("square_hinge")->supports_size(33, 33));
  EXPECT_TRUE(make_view("patch_permute", "4")->supports_size(48, 64));
  // A 2-d map works as one channel.
  const torch::Tensor map = torch::rand({32, 32});
  EXPECT_TRUE(torch::equal(make_view("rot90")->apply(map), torch::rot90(map, -1, {0, 1})));
}

TEST(Views, JigsawMovesPiecesAsPublished) {
  // Hand-derived from the published layout and permutation (anagram/views/jigsaw.h): the upper
  // left corner shows the lower right one turned 180 degrees; e0 shows e3 turned a quarter;
  // e1 shows e0, swapped along the top side onto f0's place, so f0's home cell.
  const std::vector<jigsaw::PieceMove> moves = jigsaw::piece_moves();
  ASSERT_EQ(moves.size(), 16u);
  const auto expect_move = [&](int to, int from, int turns) {
    EXPECT_EQ(moves[static_cast<size_t>(to)].to_cell, to);
    EXPECT_EQ(moves[static_cast<size_t>(to)].from_cell, from) << "to " << to;
    EXPECT_EQ(moves[static_cast<size_t>(to)].quarter_turns_ccw, turns) << "to " << to;
  };
  expect_move(0, 15, 2);
  expect_move(1, 8, 3);
  expect_move(2, 4, 3);
  expect_move(7, 2, 3);
  std::vector<int> from_cells;
  for (const auto& m : moves) from_cells.push_back(m.from_cell);
  std::sort(from_cells.begin(), from_cells.end());
  for (int i = 0; i < 16; ++i) EXPECT_EQ(from_cells[static_cast<size_t>(i)], i);

  for (const int64_t size : {64, 256}) {
    const std::vector<int> owner = jigsaw::piece_map(size);
    const torch::Tensor index = make_view("jigsaw")->source_index(size, size);
    EXPECT_TRUE(torch::equal(std::get<0>(index.sort()), torch::arange(size * size)));
    const int64_t* src = index.data_ptr<int64_t>();
    int64_t tab_pixels = 0;
    for (int64_t p = 0; p < size * size; ++p) {
      const int piece = owner[static_cast<size_t>(p)];
      // Every pixel of the piece at cell P comes from the piece that moves to P.
      ASSERT_EQ(owner[static_cast<size_t>(src[p])], moves[static_cast<size_t>(piece)].from_cell)
          << "pixel " << p << " at " << size;
      const int64_t y = p / size, x = p % size;
      const int64_t s = size / 4;
      if (piece != (y / s) * 4 + x / s) ++tab_pixels;
      // The outlines turn with the puzzle: a quarter turn of the picture maps pieces to pieces.
      const int64_t ty = x, tx = size - 1 - y;
      const int turned_piece = (piece % 4) * 4 + (3 - piece / 4);
      ASSERT_EQ(owner[static_cast<size_t>(ty * size + tx)], turned_piece) << "pixel " << p;
    }
    // 24 tabs of a neck and a knob each: a few percent of the picture, not none.
    EXPECT_GT(tab_pixels, size * size / 50) << size;
    EXPECT_LT(tab_pixels, size * size / 5) << size;
  }
  EXPECT_FALSE(make_view("jigsaw")->supports_size(62, 62));
  EXPECT_FALSE(make_view("jigsaw")->supports_size(12, 12));
  EXPECT_FALSE(make_view("jigsaw")->supports_size(64, 32));
}

TEST(Views, NoiseStaysStandardNormal) {
  torch::manual_seed(1);
  const torch::Tensor noise = torch::randn({4, 6, 64, 64});  // 98,304 samples
  const auto sorted = std::get<0>(noise.flatten().sort());
  for (const auto& view : all_views()) {
    const torch::Tensor y = view->apply(noise);
    // Exactly the same multiset of values, up to the view's sign.
    EXPECT_TRUE(torch::equal(std::get<0>((y * view->sign()).flatten().sort()), sorted))
        << view->spec();
    const double mean = y.mean().item<double>();
    const double std = y.std().item<double>();
    EXPECT_LT(std::abs(mean), 0.01) << view->spec();
    EXPECT_LT(std::abs(std - 1.0), 0.01) << view->spec();
    // A permutation keeps the pixels' own statistics per channel too.
    EXPECT_TRUE(torch::allclose(y.mean({2, 3}) * view->sign(), noise.mean({2, 3}), 0, 1e-6))
        << view->spec();
  }
}

TEST(Views, SignedChannels) {
  const ViewPtr negate = make_view("negate");
  const torch::Tensor y = torch::randn({6, 8, 8});
  const torch::Tensor partial = negate->inverse(y, 3);
  EXPECT_TRUE(torch::equal(partial.narrow(0, 0, 3), -y.narrow(0, 0, 3)));
  EXPECT_TRUE(torch::equal(partial.narrow(0, 3, 3), y.narrow(0, 3, 3)));
  EXPECT_TRUE(torch::equal(negate->inverse(y, 0), y));
  EXPECT_TRUE(torch::equal(negate->inverse(y, 6), -y));
  EXPECT_THROW(negate->inverse(y, 7), Error);
  // Views without a sign ignore it.
  EXPECT_TRUE(torch::equal(make_view("flip")->inverse(y, 3), make_view("flip")->inverse(y)));
}

TEST(Views, MatchPublishedDefinitions) {
  for (const int64_t size : {64, 32}) {
    const auto golden = testing::load_golden(std::string(ANAGRAM_GOLDEN_DIR) + "/views_" +
                                             std::to_string(size) + ".pt");
    const torch::Tensor image = golden.at("image");
    ASSERT_EQ(image.sizes(), torch::IntArrayRef({3, size, size}));
    for (const auto& [key, view_arg] : golden_views()) {
      const ViewPtr view = make_view(view_arg.first, view_arg.second);
      const auto found = golden.find(key);
      if (found == golden.end()) {
        EXPECT_FALSE(view->supports_size(size, size)) << key << " has no golden at " << size;
        continue;
      }
      EXPECT_TRUE(torch::equal(view->apply(image), found->second)) << key << " at " << size;
      EXPECT_TRUE(torch::equal(view->inverse(found->second), image)) << key << " at " << size;
    }
  }
  // Every registered view has a golden image, except jigsaw: the published piece outlines are
  // drawn images, ours are generated, so only the piece moves can match
  // (JigsawMovesPiecesAsPublished). Factorized views have theirs in tests/golden/factor_views.pt
  // (test_factor_views.cpp).
  for (const auto& info : list_views()) {
    if (info.name == "jigsaw" || info.kind == ViewKind::kFactor) continue;
    bool covered = false;
    for (const auto& entry : golden_views()) covered |= entry.second.first == info.name;
    EXPECT_TRUE(covered) << info.name;
  }
}

TEST(Views, BlockViewsAgreeAcrossSizes) {
  // Stage II sees the views at 4x the size: for these views the big view of an upsampled image
  // is the upsampled small view (so the low-res condition stays consistent).
  torch::manual_seed(2);
  const torch::Tensor small = torch::randn({3, 64, 64});
  const torch::Tensor big = small.repeat_interleave(4, 1).repeat_interleave(4, 2);
  for (const char* name : {"identity", "negate", "flip", "mirror", "rotate_cw", "rotate_ccw",
                           "rotate_180", "patch_permute", "pixel_permute"}) {
    const ViewPtr view = make_view(name);
    const torch::Tensor expected =
        view->apply(small).repeat_interleave(4, 1).repeat_interleave(4, 2);
    EXPECT_TRUE(torch::equal(view->apply(big), expected)) << name;
  }
}

TEST(Views, ViewStackMatchesPerViewApply) {
  torch::manual_seed(3);
  for (const int64_t size : {64, 32}) {
    std::vector<ViewPtr> views;
    for (const auto& view : all_views()) {
      if (view->supports_size(size, size)) views.push_back(view);
    }
    const ViewStack stack(views, size, size, torch::kCPU);
    ASSERT_EQ(stack.size(), static_cast<int64_t>(views.size()));
    EXPECT_EQ(stack.forward_index().sizes(), torch::IntArrayRef({stack.size(), size * size}));
    for (const int64_t channels : {3, 6}) {
      const torch::Tensor x = torch::randn({channels, size, size});
      const torch::Tensor seen = stack.apply_each(x);
      ASSERT_EQ(seen.sizes(), torch::IntArrayRef({stack.size(), channels, size, size}));
      EXPECT_TRUE(torch::equal(stack.apply_each(x.unsqueeze(0)), seen));
      const torch::Tensor y = torch::randn({stack.size(), channels, size, size});
      const torch::Tensor undone = stack.invert_each(y);
      const torch::Tensor undone3 = stack.invert_each(y, 3);
      for (int64_t k = 0; k < stack.size(); ++k) {
        const std::string at = where(*views[k], size, channels);
        EXPECT_TRUE(torch::equal(seen[k], views[k]->apply(x))) << at;
        EXPECT_TRUE(torch::equal(undone[k], views[k]->inverse(y[k]))) << at;
        EXPECT_TRUE(torch::equal(undone3[k], views[k]->inverse(y[k], 3))) << at;
      }
      EXPECT_TRUE(torch::equal(stack.invert_each(seen), x.unsqueeze(0).expand_as(seen)));
    }
    // Attention maps: (N, H, W), permutation only.
    const torch::Tensor maps = torch::rand({stack.size(), size, size});
    const torch::Tensor undone = stack.invert_each(maps, 0);
    for (int64_t k = 0; k < stack.size(); ++k) {
      EXPECT_TRUE(torch::equal(undone[k], views[k]->inverse(maps[k], 0))) << views[k]->spec();
    }
  }
}

TEST(Views, ViewStackChecksInputs) {
  const ViewStack stack({make_view("identity"), make_view("negate")}, 16, 16, torch::kCPU);
  EXPECT_THROW(stack.apply_each(torch::zeros({3, 16, 8})), Error);
  EXPECT_THROW(stack.apply_each(torch::zeros({2, 3, 16, 16})), Error);
  EXPECT_THROW(stack.invert_each(torch::zeros({3, 3, 16, 16})), Error);
  EXPECT_THROW(stack.invert_each(torch::zeros({2, 3, 16, 16}), 4), Error);
  EXPECT_THROW(ViewStack({}, 16, 16, torch::kCPU), Error);
  EXPECT_THROW(ViewStack({nullptr}, 16, 16, torch::kCPU), Error);
}

TEST(Views, ViewStackHalfAndDouble) {
  const ViewStack stack({make_view("rot90"), make_view("negate"), make_view("skew")}, 32, 32,
                        torch::kCPU);
  const torch::Tensor x = torch::randn({3, 32, 32});
  const torch::Tensor reference = stack.apply_each(x);
  for (const auto dtype : {torch::kFloat16, torch::kBFloat16, torch::kFloat64}) {
    const torch::Tensor seen = stack.apply_each(x.to(dtype));
    EXPECT_EQ(seen.scalar_type(), dtype);
    EXPECT_TRUE(torch::equal(seen, reference.to(dtype)));
    EXPECT_TRUE(torch::equal(stack.invert_each(seen), x.to(dtype).unsqueeze(0).expand_as(seen)));
  }
}

TEST(Views, ViewStackGradient) {
  // The anti-segregation step differentiates through apply_each: d/dx sum(w * V(x)) is the sum
  // of the views' inverses of w (transpose of a signed permutation).
  const ViewStack stack({make_view("identity"), make_view("negate"), make_view("square_hinge")}, 32,
                        32, torch::kCPU);
  const torch::Tensor x = torch::randn({1, 3, 32, 32}).requires_grad_(true);
  const torch::Tensor w = torch::randn({3, 3, 32, 32});
  (stack.apply_each(x) * w).sum().backward();
  const torch::Tensor expected = stack.invert_each(w).sum(0, /*keepdim=*/true);
  EXPECT_TRUE(torch::allclose(x.grad(), expected, 1e-5, 1e-6));
}

TEST(Views, ViewStackOnCuda) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  std::vector<ViewPtr> views;
  for (const auto& view : all_views()) {
    if (view->supports_size(64, 64)) views.push_back(view);
  }
  const ViewStack cpu(views, 64, 64, torch::kCPU);
  const ViewStack gpu(views, 64, 64, torch::kCUDA);
  EXPECT_TRUE(gpu.forward_index().is_cuda());
  for (const auto dtype : {torch::kFloat32, torch::kFloat16}) {
    const torch::Tensor x = torch::randn({6, 64, 64}).to(dtype);
    const torch::Tensor seen = gpu.apply_each(x.cuda());
    EXPECT_TRUE(torch::equal(seen.cpu(), cpu.apply_each(x)));
    const torch::Tensor y = torch::randn({gpu.size(), 6, 64, 64}).to(dtype);
    EXPECT_TRUE(torch::equal(gpu.invert_each(y.cuda(), 3).cpu(), cpu.invert_each(y, 3)));
    EXPECT_TRUE(torch::equal(gpu.invert_each(seen).cpu(), x.unsqueeze(0).expand_as(seen.cpu())));
    for (size_t k = 0; k < views.size(); ++k) {
      EXPECT_TRUE(torch::equal(views[k]->apply(x.cuda()).cpu(), views[k]->apply(x)));
    }
  }
}

}  // namespace
}  // namespace anagram
