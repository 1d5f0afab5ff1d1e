#include "anagram/eval/metrics.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "anagram/core/error.h"
#include "core/splitmix64.h"

namespace anagram {
namespace {

// softmax(scale * row)[k], computed stably.
double softmax_entry(const std::vector<double>& row, size_t k, double scale) {
  const double top = *std::max_element(row.begin(), row.end()) * scale;
  double total = 0;
  for (const double v : row) total += std::exp(v * scale - top);
  return std::exp(row[k] * scale - top) / total;
}

}  // namespace

AnagramScore score_similarity(const std::vector<std::vector<double>>& similarity,
                              double logit_scale) {
  const size_t n = similarity.size();
  if (n == 0) throw Error(ErrorKind::kInvalidArgument, "score: no views to score");
  if (!std::isfinite(logit_scale) || logit_scale <= 0) {
    throw Error(ErrorKind::kInvalidArgument, "score: the logit scale must be positive");
  }
  for (const auto& row : similarity) {
    if (row.size() != n) {
      throw Error(ErrorKind::kInvalidArgument,
                  "score: the similarity matrix must be square (" + std::to_string(n) + " views)");
    }
    for (const double v : row) {
      if (!std::isfinite(v))
        throw Error(ErrorKind::kInvalidArgument, "score: non-finite similarity");
    }
  }
  AnagramScore score;
  score.alignment = similarity[0][0];
  for (size_t i = 0; i < n; ++i) {
    score.alignment = std::min(score.alignment, similarity[i][i]);
    score.concealment += softmax_entry(similarity[i], i, logit_scale) / static_cast<double>(n);
    std::vector<double> column(n);
    for (size_t r = 0; r < n; ++r) column[r] = similarity[r][i];
    score.concealment_views += softmax_entry(column, i, logit_scale) / static_cast<double>(n);
  }
  return score;
}

double mean_of(const std::vector<double>& values) {
  if (values.empty()) throw Error(ErrorKind::kInvalidArgument, "score: mean of no values");
  double total = 0;
  for (const double v : values) total += v;
  return total / static_cast<double>(values.size());
}

double quantile(std::vector<double> values, double q) {
  if (values.empty()) throw Error(ErrorKind::kInvalidArgument, "score: quantile of no values");
  if (!(q >= 0 && q <= 1))
    throw Error(ErrorKind::kInvalidArgument, "score: quantile outside [0, 1]");
  std::sort(values.begin(), values.end());
  const double position = q * static_cast<double>(values.size() - 1);
  const auto below = static_cast<size_t>(std::floor(position));
  const size_t above = std::min(below + 1, values.size() - 1);
  const double fraction = position - static_cast<double>(below);
  return values[below] + (values[above] - values[below]) * fraction;
}

Interval bootstrap_interval(const std::vector<double>& values,
                            const std::function<double(const std::vector<double>&)>& statistic,
                            int resamples, uint64_t seed, double level) {
  if (values.empty()) throw Error(ErrorKind::kInvalidArgument, "score: bootstrap of no values");
  if (resamples < 1) throw Error(ErrorKind::kInvalidArgument, "score: resamples must be >= 1");
  if (!(level > 0 && level < 1)) {
    throw Error(ErrorKind::kInvalidArgument, "score: the interval level must be in (0, 1)");
  }
  detail::SplitMix64 rng(seed);
  std::vector<double> statistics;
  statistics.reserve(static_cast<size_t>(resamples));
  std::vector<double> resample(values.size());
  for (int b = 0; b < resamples; ++b) {
    for (auto& v : resample) v = values[rng.below(values.size())];
    statistics.push_back(statistic(resample));
  }
  return {quantile(statistics, (1 - level) / 2), quantile(statistics, (1 + level) / 2)};
}

}  // namespace anagram
