// anagram/eval/score.h: scoring finished samples (`anagram score`): each sample folder's picture
// under each of its views against each prompt, with a clean CLIP, then per-method statistics.
//
//   auto scorer = anagram::ClipScorer::load(dir, torch::kCPU);
//   std::vector<anagram::ScoredSample> samples;
//   for (const auto& folder : anagram::find_sample_folders({"out"}))
//     samples.push_back(anagram::score_sample_folder(scorer, folder));
//   auto table = anagram::summarize_scores(samples);
//
// Where tensors live: pictures are read from PNG on the host and handed to the scorer, which
// moves them to its device; scores come back to the host.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "anagram/eval/metrics.h"
#include "anagram/models/clip_scorer.h"
#include "anagram/pipeline/request.h"

namespace anagram {

struct ScoredSample {
  std::filesystem::path folder;
  std::string group;                 // method_label of the sample's request
  std::vector<std::string> prompts;  // as the model saw them (style applied)
  std::vector<std::string> views;    // view specs, "rotate_180", "patch_permute:8,0"
  uint64_t seed = 0;
  int picture_size = 0;                         // side of the scored picture
  std::vector<std::vector<double>> similarity;  // [view][prompt] cosines
  AnagramScore score;
  bool selected = false;  // among the best of its set (select_best)
};

// "baseline", "mtl", or "mtl" with the techniques turned off: "mtl-no-antiseg-no-balance".
std::string method_label(const GenerateRequest& request);

// Every sample folder (a folder holding metadata.json) under `roots`, sorted; a root may itself
// be a sample folder. Hidden folders (in-progress samples) and symbolic links are skipped,
// at most `max_depth` levels deep. Throws Error(kInvalidArgument) for a root that is missing.
std::vector<std::filesystem::path> find_sample_folders(
    const std::vector<std::filesystem::path>& roots, int max_depth = 8);

// Scores the picture of one sample folder: the last stage's (size 0) or the stage whose picture
// has side `size` (64, 256). Views are applied here, from metadata.json, so the view pictures
// need not exist. Throws Error(kInvalidArgument) naming the folder for a bad or missing file.
ScoredSample score_sample_folder(const ClipScorer& scorer, const std::filesystem::path& folder,
                                 int size = 0);

struct Estimate {
  double value = 0;
  Interval interval;  // 95% percentile bootstrap
};

struct GroupSummary {
  std::string group;
  size_t samples = 0;
  Estimate alignment_mean, alignment_q90, alignment_q95;
  Estimate concealment_mean, concealment_q90, concealment_q95;
};

// One row per group (sorted by name): mean and 0.9 / 0.95 quantiles of A and C over the group's
// samples, each with a bootstrap interval (`resamples`, seeded, so reruns agree).
std::vector<GroupSummary> summarize_scores(const std::vector<ScoredSample>& samples,
                                           int resamples = 1000, uint64_t seed = 0);

// Marks the `k` best samples of each set of samples with the same group, prompts and views:
// highest alignment (the weakest view's similarity to its prompt), ties by concealment.
void select_best(std::vector<ScoredSample>& samples, size_t k);

// One CSV row per sample: folder, group, seed, size, prompts, views, A, C, C_views, S entries.
std::string samples_csv(const std::vector<ScoredSample>& samples);
// One CSV row per group with the estimates and their intervals.
std::string summary_csv(const std::vector<GroupSummary>& summary);
// Everything, with the scorer's name, source and logit scale.
nlohmann::json scores_json(const std::vector<ScoredSample>& samples,
                           const std::vector<GroupSummary>& summary, const ScorerManifest& scorer);
// The summary as an aligned text table for the terminal.
std::string summary_table(const std::vector<GroupSummary>& summary);

}  // namespace anagram
