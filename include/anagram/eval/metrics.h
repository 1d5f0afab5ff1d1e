// anagram/eval/metrics.h: the visual-anagram scores of the papers, and their statistics.
//
// For one sample with N views (view i is meant to show prompt i), S is the N x N matrix of
// cosine similarities between the CLIP embedding of view i's picture (row) and of prompt j
// (column). Then (Geng et al., CVPR 2024; Xu et al., WACV 2025):
//   alignment           A   = min_i S_ii                           (the weakest view)
//   concealment         C   = mean_i softmax_j(scale * S_i.)_i     (each view's picture
//                             classified among the prompts: softmax along a row)
//   concealment (views) C_v = mean_j softmax_i(scale * S_.j)_j     (each prompt matched among the
//                             views: softmax along a column)
// with scale = CLIP's logit scale, 1 / temperature (100 for OpenAI CLIP). The papers report A
// and C and their 0.9 and 0.95 quantiles over samples, since the pictures people show are
// picked from many. scripts/golden/golden_score_metrics.py checks all of this against numpy.
//
//   auto s = anagram::score_similarity({{0.31, 0.18}, {0.20, 0.29}}, 100.0);
//   double a90 = anagram::quantile(alignments, 0.9);
//   anagram::Interval ci = anagram::bootstrap_interval(alignments, anagram::mean_of);
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

namespace anagram {

struct AnagramScore {
  double alignment = 0;
  double concealment = 0;        // softmax over prompts (the papers' C)
  double concealment_views = 0;  // softmax over views
};

// similarity: N x N, N >= 1, finite. Throws Error(kInvalidArgument) otherwise.
AnagramScore score_similarity(const std::vector<std::vector<double>>& similarity,
                              double logit_scale);

double mean_of(const std::vector<double>& values);
// numpy.quantile's default ("linear"): position q * (n - 1) in the sorted values, interpolated.
// values non-empty, q in [0, 1].
double quantile(std::vector<double> values, double q);

struct Interval {
  double low = 0;
  double high = 0;
};

// Percentile bootstrap: `resamples` resamples of `values` with replacement (indices drawn in
// order from splitmix64(seed), rejection-sampled), `statistic` of each, and the
// (1 - level) / 2 and (1 + level) / 2 quantiles of those. Deterministic for a seed.
Interval bootstrap_interval(const std::vector<double>& values,
                            const std::function<double(const std::vector<double>&)>& statistic,
                            int resamples = 1000, uint64_t seed = 0, double level = 0.95);

}  // namespace anagram
