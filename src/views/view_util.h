// Private helpers shared by the view files: the registry entry type, index-map builders,
// argument parsing and the seeded permutation.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "anagram/views/views.h"
#include "core/splitmix64.h"

namespace anagram::views_detail {

// One registry row: what `anagram views` shows and how to build the view from its argument.
struct ViewEntry {
  ViewInfo info;
  std::function<ViewPtr(const std::string& arg)> make;
};

// Builds a (H*W) int64 CPU source index map from `source(y, x) -> {sy, sx}`.
template <typename SourceFn>
torch::Tensor index_from_coords(int64_t height, int64_t width, SourceFn source) {
  torch::Tensor index = torch::empty({height * width}, torch::kInt64);
  int64_t* out = index.data_ptr<int64_t>();
  for (int64_t y = 0; y < height; ++y) {
    for (int64_t x = 0; x < width; ++x) {
      const std::pair<int64_t, int64_t> s = source(y, x);
      out[y * width + x] = s.first * width + s.second;
    }
  }
  return index;
}

// Throws Error(kInvalidArgument) unless `arg` is empty: for views without a parameter.
void require_no_arg(const std::string& view, const std::string& arg);
// Throws Error(kInvalidArgument) unless height == width.
void require_square(const std::string& view, int64_t height, int64_t width);

// Splits "a,b" at commas (no trimming beyond surrounding blanks of each part).
std::vector<std::string> split_args(const std::string& arg);
// Whole-string parses; throw Error(kInvalidArgument) naming the view and `what` on failure.
int64_t parse_int(const std::string& view, const std::string& text, const std::string& what,
                  int64_t min_value, int64_t max_value);
uint64_t parse_seed(const std::string& view, const std::string& text);
double parse_finite(const std::string& view, const std::string& text, const std::string& what);
// Shortest decimal text that reads back as the same double ("1.5", "0.375").
std::string format_double(double value);

using detail::SplitMix64;  // shared with the bootstrap of `anagram score`

// Seeded Fisher-Yates shuffle of 0..n-1: for i = n-1 .. 1, swap(p[i], p[rng.below(i + 1)]).
// The same seed gives the same permutation on every machine (scripts/golden/golden_views.py mirrors it).
std::vector<int64_t> seeded_permutation(int64_t n, uint64_t seed);

}  // namespace anagram::views_detail
