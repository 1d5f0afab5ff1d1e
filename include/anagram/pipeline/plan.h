// anagram/pipeline/plan.h: a request checked against a bundle, before any model is loaded.
//
// Basic usage:
//   anagram::Manifest manifest = anagram::read_manifest(bundle);
//   anagram::GenerationPlan plan = anagram::plan_generation(request, manifest);
//   // ... only now load models (Session::open) and create the output folder
//
// Everything that can be wrong with a request on this bundle fails here: views that do not fit
// the picture sizes (or, in stage III, do not move whole 4x4 blocks), more steps than the
// schedule has, a stage the bundle lacks, concept words not in their prompts. A plan is plain data,
// the same for every device: the session builds the device-bound helpers (view index tensors on its
// device) when it runs the plan.
//
// The cascade is a list of stages; what makes one stage differ from another is a field here,
// so the sampling loop has no per-stage branches. A new kind of stage adds fields and a plan
// entry (see docs/architecture.md).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "anagram/diffusion/combiner.h"
#include "anagram/models/bundle.h"
#include "anagram/models/scheduler_config.h"
#include "anagram/models/vae_decoder.h"
#include "anagram/pipeline/request.h"
#include "anagram/text/t5_tokenizer.h"
#include "anagram/views/task.h"

namespace anagram {

// A stage that upsamples the previous stage's picture (IF's stage II, the x4 upscaler): the
// picture, upscaled to this stage's grid and noised to `noise_level` with `noising_scheduler`,
// is extra input for every view, and the noise level is the UNet's class label.
struct SuperResolution {
  DDPMSchedulerConfig noising_scheduler;
  int noise_level = 0;
  bool augmentation_noise_first = false;  // the draw order of the stage's published pipeline
};

// A latent stage (stage III): its x is latents, decoded into pictures `upscale` times larger.
struct LatentDecoding {
  int64_t upscale = 4;
  VaeTiling tiling = VaeTiling::kAuto;
};

struct StagePlan {
  int stage = 1;      // 1-based position in the cascade: which of the bundle's UNets runs it
  int64_t size = 64;  // x is (1, channels, size, size): pixels, or latents
  int64_t channels = 3;
  SchedulerConfig scheduler;  // DDPM (IF) or DDIM (stage III)
  int steps = 30;
  double guidance = 10.0;
  std::optional<SuperResolution> super_resolution;  // unset: the stage starts from pure noise
  std::optional<LatentDecoding> latent;             // unset: x is the picture
  // Whose text states condition the stage: 0 the bundle's T5 encoder, else the number of the
  // stage whose own encoder it is (StageEntry::text).
  int text_model = 0;
  bool scored = true;           // balancing can score its view inputs (not latents)
  bool antiseg = false;         // the method's anti-segregation after its first K steps
  bool save_attention = false;  // record the concept attention maps of every step

  int64_t picture_size() const { return latent ? size * latent->upscale : size; }
};

struct GenerationPlan {
  GenerateRequest request;  // as resolved: stages, stage II steps/guidance and noise level set
  std::vector<Task> tasks;
  std::vector<StagePlan> stages;  // in cascade order
  // The views' kind decides the reduction: permutation views average the tasks' estimates,
  // factorized views (views/factor.h) sum their filtered components.
  Reduction reduction = Reduction::kMean;
  // The method as it will run (balancing falls back to equal weights without a CLIP and for
  // factorized views; anti-segregation needs two tasks).
  bool balance = false;
  // The concept maps' side R (the UNet's attention query grid) where a stage uses them, else 0.
  int64_t attention_resolution = 0;
  std::vector<std::vector<int64_t>> concept_tokens;  // per task: positions in its T5 ids
  std::vector<std::string> notes;                    // what was changed and why, for the log

  bool antiseg() const;  // any stage runs anti-segregation
  bool needs_clip() const { return balance; }
  bool factorized() const { return reduction == Reduction::kSum; }
  int num_stages() const { return static_cast<int>(stages.size()); }
};

// Checks the request (validate()) and everything that depends on the bundle. `tokenizer` may be
// given to avoid re-reading the bundle's SentencePiece model for every request (it is read only
// when concept tokens are needed). Throws anagram::Error (kInvalidArgument for the request,
// kBundle for the bundle).
GenerationPlan plan_generation(const GenerateRequest& request, const Manifest& manifest,
                               const T5Tokenizer* tokenizer = nullptr);

}  // namespace anagram
