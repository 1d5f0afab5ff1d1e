// anagram/pipeline/plan.h: a request checked against a bundle, before any model is loaded.
//
// Basic usage:
//   anagram::Manifest manifest = anagram::read_manifest(bundle);
//   anagram::GenerationPlan plan = anagram::plan_generation(request, manifest, device);
//   // ... only now load models (Session) and create the output folder
//
// Everything that can be wrong with a request on this bundle fails here: views that do not fit
// the picture sizes, more steps than the schedule has, a stage the bundle lacks, concept words
// not in their prompts, scheduler configs the program cannot run.
#pragma once

#include <c10/core/Device.h>

#include <memory>
#include <string>
#include <vector>

#include "anagram/diffusion/ddpm_scheduler.h"
#include "anagram/models/bundle.h"
#include "anagram/pipeline/request.h"
#include "anagram/text/t5_tokenizer.h"
#include "anagram/views/task.h"

namespace anagram {

struct StagePlan {
  int stage = 1;
  int64_t size = 64;  // x is (1, channels, size, size)
  int64_t channels = 3;
  DDPMSchedulerConfig scheduler;
  std::optional<DDPMSchedulerConfig> noising_scheduler;  // stage II
  int steps = 30;
  double guidance = 10.0;
  int noise_level = 0;                     // stage II
  std::shared_ptr<const ViewStack> views;  // the tasks' views at this stage's size
};

struct GenerationPlan {
  GenerateRequest request;  // as resolved: stages, stage II steps/guidance and noise level set
  std::vector<Task> tasks;
  std::vector<StagePlan> stages;  // stage I first
  // The method as it will run (balancing falls back to equal weights without a CLIP;
  // anti-segregation needs two tasks).
  bool antiseg = false;
  bool balance = false;
  std::shared_ptr<const ViewStack> map_views;  // views at the attention maps' resolution
  std::vector<std::vector<int64_t>> concept_tokens;
  std::vector<std::string> notes;  // what was changed and why, for the log

  bool needs_clip() const { return balance; }
  bool needs_stage2() const { return stages.size() > 1; }
};

// Checks the request (validate()) and everything that depends on the bundle. `tokenizer` may be
// given to avoid re-reading the bundle's SentencePiece model for every request. Throws
// anagram::Error (kInvalidArgument for the request, kBundle for the bundle).
GenerationPlan plan_generation(const GenerateRequest& request, const Manifest& manifest,
                               const c10::Device& device, const T5Tokenizer* tokenizer = nullptr);

}  // namespace anagram
