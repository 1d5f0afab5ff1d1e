// anagram/generate.h: `anagram gen` as a library call: options in, sample folders out.
//
// Basic usage:
//   anagram::GenerateOptions options;          // defaults live here, the CLI binds to them
//   options.prompts = {"dog", "cat"};
//   options.views = {"rot180"};                // one fewer than prompts: first is upright
//   options.out = "out";
//   anagram::GenerateResult result = anagram::generate(options);
//
// Every check that can fail on user input runs before any model is loaded.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "anagram/antiseg.h"
#include "anagram/mtl_combiner.h"
#include "anagram/views.h"

namespace anagram {

// The bundle used when --bundle is not given: $ANAGRAM_BUNDLE, else the bundled default model.
std::string default_bundle_path();

enum class Method {
  kMtl,       // Xu et al. (WACV 2025): anti-segregation, noise balancing, variance rectification
  kBaseline,  // Geng et al. (CVPR 2024): the mean of the views' noise estimates
};
std::string method_name(Method method);

struct GenerateOptions {
  std::string bundle = default_bundle_path();
  std::vector<std::string> prompts;
  std::vector<std::string> views;      // names or aliases; may be one fewer than prompts
  std::vector<std::string> view_args;  // empty, or one per --view ("" for none)
  std::string style;                   // prefix for every prompt, as in the published code
  int steps = 30;
  double guidance = 10.0;
  uint64_t seed = 0;
  int num_samples = 1;  // sample i uses seed + i
  std::string device = "cpu";
  std::string dtype = "auto";  // the bundle's dtype
  std::string out = "out";
  std::string command_line;  // recorded in metadata.json

  // The method and its switches (ignored by the baseline).
  Method method = Method::kMtl;
  bool antiseg = true;
  AntiSegOptions antiseg_options;
  MtlOptions mtl;                     // balance, rectify and the published quirks
  std::vector<std::string> concepts;  // per prompt; empty or "" = the prompt's last word
  bool save_attention = false;        // write each task's concept map per step (PNG)

  // Checks everything that needs no model; throws anagram::Error(kInvalidArgument).
  void validate() const;
  nlohmann::json to_json() const;
};

// One (view, prompt) pair: what a viewer sees when looking at the picture through `view`.
struct Task {
  std::shared_ptr<const View> view;
  std::string prompt;  // with the style prefix applied
};

// Pairs prompts with views. With one view fewer than prompts, the first prompt gets identity.
std::vector<Task> resolve_tasks(const GenerateOptions& options);

struct Progress {
  int sample = 0;  // 0-based
  int num_samples = 0;
  int step = 0;  // steps done in this sample
  int num_steps = 0;
  double seconds = 0;  // elapsed in this sample
};
using ProgressCallback = std::function<void(const Progress&)>;

struct GenerateResult {
  std::vector<std::filesystem::path> sample_dirs;
  double load_seconds = 0;
  double seconds_per_step = 0;  // mean over all samples
};

// Runs the whole job. `interrupted`, when set, is polled between steps: the run then stops
// with anagram::Error(kRuntime) and leaves no partial output.
GenerateResult generate(const GenerateOptions& options, const ProgressCallback& progress = {},
                        const std::atomic<bool>* interrupted = nullptr);

}  // namespace anagram
