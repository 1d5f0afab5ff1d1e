#include "views/view_util.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <numeric>

#include "anagram/core/error.h"

namespace anagram::views_detail {
namespace {

std::string trim(const std::string& s) {
  const auto begin = s.find_first_not_of(" \t");
  if (begin == std::string::npos) return "";
  const auto end = s.find_last_not_of(" \t");
  return s.substr(begin, end - begin + 1);
}

[[noreturn]] void bad_arg(const std::string& view, const std::string& message) {
  throw Error(ErrorKind::kInvalidArgument, "view '" + view + "': " + message);
}

}  // namespace

void require_no_arg(const std::string& view, const std::string& arg) {
  if (!trim(arg).empty()) {
    bad_arg(view, "takes no argument, got '" + arg + "'");
  }
}

void require_square(const std::string& view, int64_t height, int64_t width) {
  if (height != width) {
    bad_arg(view,
            "needs a square image, got " + std::to_string(height) + "x" + std::to_string(width));
  }
}

std::vector<std::string> split_args(const std::string& arg) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const size_t comma = arg.find(',', start);
    parts.push_back(trim(arg.substr(start, comma - start)));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return parts;
}

int64_t parse_int(const std::string& view, const std::string& text, const std::string& what,
                  int64_t min_value, int64_t max_value) {
  int64_t value = 0;
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  const auto result = std::from_chars(begin, end, value);
  if (text.empty() || result.ec != std::errc() || result.ptr != end) {
    bad_arg(view, what + " must be an integer, got '" + text + "'");
  }
  if (value < min_value || value > max_value) {
    bad_arg(view, what + " must be in [" + std::to_string(min_value) + ", " +
                      std::to_string(max_value) + "], got " + text);
  }
  return value;
}

uint64_t parse_seed(const std::string& view, const std::string& text) {
  uint64_t value = 0;
  const char* end = text.data() + text.size();
  const auto result = std::from_chars(text.data(), end, value);
  if (text.empty() || result.ec != std::errc() || result.ptr != end) {
    bad_arg(view, "seed must be an integer in [0, 2^64), got '" + text + "'");
  }
  return value;
}

double parse_finite(const std::string& view, const std::string& text, const std::string& what) {
  double value = 0;
  const char* end = text.data() + text.size();
  const auto result = std::from_chars(text.data(), end, value);
  if (text.empty() || result.ec != std::errc() || result.ptr != end || !std::isfinite(value)) {
    bad_arg(view, what + " must be a finite number, got '" + text + "'");
  }
  return value;
}

std::string format_double(double value) {
  char buffer[64];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buffer, sizeof buffer, "%.*g", precision, value);
    if (std::strtod(buffer, nullptr) == value) break;
  }
  return buffer;
}

std::vector<int64_t> seeded_permutation(int64_t n, uint64_t seed) {
  std::vector<int64_t> perm(static_cast<size_t>(n));
  std::iota(perm.begin(), perm.end(), int64_t{0});
  SplitMix64 rng(seed);
  for (int64_t i = n - 1; i >= 1; --i) {
    const auto j = static_cast<int64_t>(rng.below(static_cast<uint64_t>(i) + 1));
    std::swap(perm[static_cast<size_t>(i)], perm[static_cast<size_t>(j)]);
  }
  return perm;
}

}  // namespace anagram::views_detail
