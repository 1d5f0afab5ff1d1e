// anagram/pipeline/request.h: what one `anagram gen` (or one batch line) asks for, typed.
//
// Basic usage:
//   anagram::GenerateRequest request;         // defaults live here; the CLI binds to them
//   request.prompts = {"dog", "cat"};
//   request.views = {"rot180"};               // one fewer than prompts: the first is upright
//   request.validate();                       // throws anagram::Error naming the field
//   nlohmann::json j = request.to_json();     // and GenerateRequest::from_json(j) reads it back
//
// A request describes pictures, not where they go or which model makes them: the bundle and
// device belong to the Session (session.h), the output folder to the run. Errors name request
// fields ("steps", "prompts[1]"), as written in JSON, so batch files and the CLI report alike.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "anagram/core/error.h"
#include "anagram/diffusion/antiseg.h"
#include "anagram/diffusion/mtl_combiner.h"
#include "anagram/views/task.h"

namespace anagram {

enum class Method {
  kMtl,       // Xu et al. (WACV 2025): anti-segregation, noise balancing, variance rectification
  kBaseline,  // Geng et al. (CVPR 2024): the mean of the views' noise estimates
};
std::string method_name(Method method);
Method parse_method(const std::string& name);  // "mtl" | "baseline"; throws kInvalidArgument

// Limits on what a request may ask for (the reasons are in request.cpp).
inline constexpr size_t kMaxTasks = 8;
inline constexpr size_t kMaxPromptBytes = 4096;
inline constexpr int kMaxSteps = 1000;
inline constexpr double kMaxGuidance = 100.0;
inline constexpr int kMaxSamples = 100000;

struct GenerateRequest {
  std::vector<std::string> prompts;    // one per view, in view order
  std::vector<std::string> views;      // names or aliases; may be one fewer than prompts
  std::vector<std::string> view_args;  // empty, or one per view ("" for none)
  std::string style;                   // prefix for every prompt, as in the published code
  int steps = 30;                      // stage I denoising steps
  double guidance = 10.0;              // classifier-free guidance scale (stage I)
  uint64_t seed = 0;
  int num_samples = 1;  // sample i uses seed + i

  // The method and its switches (ignored by the baseline).
  Method method = Method::kMtl;
  bool antiseg = true;
  AntiSegOptions antiseg_options;
  MtlOptions mtl;                     // balance, rectify and the published quirks
  std::vector<std::string> concepts;  // per prompt; empty or "" = the prompt's last word
  // Find concept tokens in the lower-cased prompt the T5 states come from, instead of the raw
  // prompt as the published code does (ConceptSearch in antiseg.h).
  bool exact_concept_tokens = false;
  bool save_attention = false;  // write each task's concept map per step (PNG)

  // The cascade. stages 0: every stage the bundle has (stopping before stage III, with a note,
  // when a view cannot run there).
  int stages = 0;
  std::optional<int> stage2_steps;        // default: steps
  std::optional<double> stage2_guidance;  // default: guidance
  std::optional<int> noise_level;         // stage II augmentation; default: the bundle's (50)
  std::optional<int> stage3_steps;        // default: the bundle's (75)
  std::optional<double> stage3_guidance;  // default: the bundle's (9)
  std::optional<int> stage3_noise_level;  // stage III augmentation; default: the bundle's (20)
  std::string vae_tiling = "auto";        // stage III's decoding: auto | on | off (vae_decoder.h)

  // Checks everything that needs no model; throws anagram::Error(kInvalidArgument) naming the
  // field.
  void validate() const;
  // Every field, by its JSON name (the same names from_json reads).
  nlohmann::json to_json() const;
  // Reads the fields of to_json(); missing keys keep their defaults, unknown keys and values
  // of the wrong type or range are refused (Error of `kind` naming the field).
  static GenerateRequest from_json(const nlohmann::json& j,
                                   ErrorKind kind = ErrorKind::kInvalidArgument);
};

// The prompt as the model sees it: f"{style} {prompt}".strip(), as the published code does.
std::string styled_prompt(const std::string& style, const std::string& prompt);

// Pairs prompts with views. With one view fewer than prompts, the first prompt gets identity.
std::vector<Task> resolve_tasks(const GenerateRequest& request);

}  // namespace anagram
