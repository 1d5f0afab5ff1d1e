#include "anagram/pipeline/plan.h"

#include <algorithm>

#include "anagram/core/error.h"
#include "anagram/core/error_text.h"
#include "anagram/diffusion/antiseg.h"
#include "anagram/models/text_encoder.h"
#include "anagram/views/factor.h"

namespace anagram {
namespace {

// The request field of task k's view: with one view fewer than prompts, task 0 is the upright
// first prompt and task k has views[k - 1].
std::string view_field(const std::vector<Task>& tasks, const GenerateRequest& r, size_t k) {
  const size_t offset = tasks.size() - std::min(tasks.size(), r.views.size());
  return "views[" + std::to_string(k >= offset ? k - offset : k) + "]";
}

// Every task's view must be defined on a size x size grid (`what` names the grid for errors).
void check_views_fit(const std::vector<Task>& tasks, const GenerateRequest& r, int64_t size,
                     const std::string& what, const std::string& hint = "") {
  for (size_t k = 0; k < tasks.size(); ++k) {
    try {
      tasks[k].view->check_size(size, size);
    } catch (const Error& e) {
      throw Error(
          ErrorKind::kInvalidArgument, view_field(tasks, r, k),
          "view '" + tasks[k].view->name() + "' does not fit " + what + ": " + e.detail() + hint);
    }
  }
}

// A factorized view's filter must fit the stage's pictures (its kernel scales with them).
void check_filters_fit(const std::vector<Task>& tasks, const StagePlan& stage) {
  for (size_t k = 0; k < tasks.size(); ++k) {
    try {
      static_cast<const FactorView&>(*tasks[k].view).check_filter_size(stage.size);
    } catch (const Error& e) {
      throw Error(ErrorKind::kInvalidArgument, "views[" + std::to_string(k) + "]",
                  e.detail() + " (stage " + std::to_string(stage.stage) + ")");
    }
  }
}

// One request takes views of one kind: permutations are averaged, factorized views summed.
Reduction reduction_of(const std::vector<Task>& tasks) {
  const ViewKind first = tasks.front().view->kind();
  for (size_t k = 1; k < tasks.size(); ++k) {
    if (tasks[k].view->kind() != first) {
      const Task& factor = first == ViewKind::kFactor ? tasks.front() : tasks[k];
      const Task& permutation = first == ViewKind::kFactor ? tasks[k] : tasks.front();
      throw Error(ErrorKind::kInvalidArgument, "views[" + std::to_string(k) + "]",
                  "'" + factor.view->name() +
                      "' is a factorized view (it filters the noise "
                      "estimate) and '" +
                      permutation.view->name() +
                      "' a permutation (it moves pixels); one request takes views of one kind "
                      "(with factorized views, give one --view per --prompt)");
    }
  }
  return first == ViewKind::kFactor ? Reduction::kSum : Reduction::kMean;
}

// The tasks' views that cannot run in a latent stage: each must move whole blocks of the
// picture the way it moves latent cells (views.h, moves_whole_blocks). Empty when all can.
std::vector<size_t> views_off_latent_grid(const std::vector<Task>& tasks, const StageEntry& entry) {
  std::vector<size_t> off;
  for (size_t k = 0; k < tasks.size(); ++k) {
    if (!moves_whole_blocks(*tasks[k].view, entry.latent->size, entry.latent->upscale)) {
      off.push_back(k);
    }
  }
  return off;
}

// The request's stage count against the bundle's cascade. 0 means every stage the bundle has,
// except a latent stage that a view cannot run in: the cascade then stops before it, with a
// note (asked for by number, such a stage is refused in plan_latent_views).
int resolve_stage_count(GenerationPlan& plan, const Manifest& manifest) {
  GenerateRequest& r = plan.request;
  const int available = static_cast<int>(manifest.stages.size());
  if (r.stages > available) {
    static const char* const kExporters[] = {"", "export_if.py --stage2", "export_sd_upscaler.py"};
    throw Error(ErrorKind::kInvalidArgument, "stages",
                "bundle '" + printable(manifest.name) + "' has " + std::to_string(available) +
                    " stage" + (available == 1 ? "" : "s") + "; use stages " +
                    std::to_string(available) + " or add stage " + std::to_string(r.stages) +
                    " with scripts/export/" + kExporters[std::min(r.stages, 3) - 1]);
  }
  if (r.stages == 0) {
    r.stages = available;
    for (int i = 0; i < available; ++i) {
      const StageEntry& entry = manifest.stages[static_cast<size_t>(i)];
      if (!entry.latent) continue;
      const std::vector<size_t> off = views_off_latent_grid(plan.tasks, entry);
      if (off.empty()) continue;
      r.stages = i;
      plan.notes.push_back("stopping after stage " + std::to_string(i) + ": view '" +
                           plan.tasks[off.front()].view->name() + "' cannot run in stage " +
                           std::to_string(entry.stage) +
                           " (it does not move whole latent cells; docs/stage3.md)");
      break;
    }
  }
  return r.stages;
}

// The request's knobs of one stage: stage I's are the plain fields, a later stage's default to
// the bundle's published values where it has them (stage III) and else to stage I's.
struct StageKnobs {
  std::optional<int>* steps = nullptr;
  std::optional<double>* guidance = nullptr;
  std::optional<int>* noise_level = nullptr;
  const char* steps_field = "steps";
  const char* noise_field = "noise_level";
};

StageKnobs knobs_of(GenerateRequest& r, int stage) {
  if (stage == 2) return {&r.stage2_steps, &r.stage2_guidance, &r.noise_level, "stage2_steps"};
  if (stage == 3) {
    return {&r.stage3_steps, &r.stage3_guidance, &r.stage3_noise_level, "stage3_steps",
            "stage3_noise_level"};
  }
  return {};
}

// Steps, guidance and (for a super-resolution stage) the noise level of one stage, with the
// request's defaults resolved into it.
StagePlan plan_stage(GenerateRequest& r, const StageEntry& entry) {
  StagePlan stage;
  stage.stage = entry.stage;
  stage.size = entry.sample_size();
  stage.channels = entry.sample_channels();
  stage.scheduler = entry.scheduler;
  stage.steps = r.steps;
  stage.guidance = r.guidance;
  const StageKnobs knobs = knobs_of(r, entry.stage);
  if (knobs.steps) {
    if (!*knobs.steps) *knobs.steps = entry.default_steps > 0 ? entry.default_steps : r.steps;
    if (!*knobs.guidance) {
      *knobs.guidance = entry.default_guidance > 0 ? entry.default_guidance : r.guidance;
    }
    stage.steps = **knobs.steps;
    stage.guidance = **knobs.guidance;
  }
  if (entry.noising_scheduler) {
    if (!*knobs.noise_level) *knobs.noise_level = static_cast<int>(entry.default_noise_level);
    stage.super_resolution = SuperResolution{*entry.noising_scheduler, **knobs.noise_level,
                                             entry.augmentation_noise_first};
    if (stage.super_resolution->noise_level > entry.max_noise_level) {
      throw Error(ErrorKind::kInvalidArgument, knobs.noise_field,
                  "must be at most stage " + std::to_string(entry.stage) + "'s " +
                      std::to_string(entry.max_noise_level) + ", got " +
                      std::to_string(**knobs.noise_level));
    }
  }
  if (entry.latent) {
    stage.latent = LatentDecoding{entry.latent->upscale, parse_vae_tiling(r.vae_tiling)};
    stage.scored = false;
  }
  if (entry.text) stage.text_model = entry.stage;
  const int64_t timesteps = num_train_timesteps(stage.scheduler);
  if (stage.steps > timesteps) {
    throw Error(ErrorKind::kInvalidArgument, knobs.steps_field,
                "must be at most the bundle's " + std::to_string(timesteps) +
                    " training timesteps, got " + std::to_string(stage.steps));
  }
  return stage;
}

// A latent stage asked for by number: every view must move whole latent cells.
void check_latent_views(const std::vector<Task>& tasks, const GenerateRequest& r,
                        const StageEntry& entry) {
  const std::vector<size_t> off = views_off_latent_grid(tasks, entry);
  if (off.empty()) return;
  const size_t k = off.front();
  throw Error(ErrorKind::kInvalidArgument, view_field(tasks, r, k),
              "view '" + tasks[k].view->name() + "' cannot run in stage " +
                  std::to_string(entry.stage) + ": it does not move whole " +
                  std::to_string(entry.latent->upscale) + "x" +
                  std::to_string(entry.latent->upscale) +
                  " pixel blocks, so it is no view of the latents (docs/stage3.md lists the "
                  "views that are); use stages " +
                  std::to_string(entry.stage - 1));
}

// Balancing and anti-segregation as they will run, with a note where they fall back.
void plan_method(GenerationPlan& plan, const Manifest& manifest) {
  const GenerateRequest& r = plan.request;
  const bool mtl = r.method == Method::kMtl;
  plan.balance = mtl && r.mtl.balance;
  if (plan.balance && plan.factorized()) {
    plan.balance = false;
    plan.notes.push_back(
        "noise vector balancing is not defined for factorized views (reweighting the "
        "components would break their sum to the picture): equal weights (docs/method_notes.md)");
  }
  if (plan.balance && !manifest.clip) {
    plan.balance = false;
    plan.notes.push_back("bundle '" + printable(manifest.name) +
                         "' has no noise-aware CLIP: noise vector balancing falls back to equal "
                         "weights");
  }
  for (const StagePlan& stage : plan.stages) {
    if (plan.balance && !stage.scored) {
      plan.notes.push_back("stage " + std::to_string(stage.stage) +
                           " weighs the tasks equally: the noise-aware CLIP scores pictures, not "
                           "its latents (docs/method_notes.md)");
    }
  }
  bool antiseg = mtl && r.antiseg;
  if (antiseg && plan.tasks.size() < 2) {
    antiseg = false;
    plan.notes.push_back(
        "anti-segregation needs two prompts to keep apart; with one it is skipped");
  }
  // The method's anti-segregation and the saved maps act on the base stage's attention.
  plan.stages.front().antiseg = antiseg;
  plan.stages.front().save_attention = r.save_attention;
}

// The concept maps' resolution and each task's concept tokens, for the stages that use them.
void plan_concepts(GenerationPlan& plan, const Manifest& manifest, const T5Tokenizer* tokenizer) {
  const StagePlan& base = plan.stages.front();
  if (!base.antiseg && !base.save_attention) return;
  const StageEntry& entry = manifest.stage(base.stage);
  if (!entry.unet.attention || entry.unet.attention->num_layers <= 0) {
    throw Error(ErrorKind::kBundle, "bundle '" + printable(manifest.dir.string()) +
                                        "' exposes no cross-attention layers (needed by "
                                        "anti-segregation and save_attention)");
  }
  plan.attention_resolution = entry.unet.attention->query_resolution;
  const int64_t r = plan.attention_resolution;
  check_views_fit(plan.tasks, plan.request, r,
                  "the " + std::to_string(r) + "x" + std::to_string(r) +
                      " attention maps that anti-segregation uses",
                  " (switch anti-segregation off)");
  std::optional<T5Tokenizer> own;
  if (!tokenizer) {
    own = load_t5_tokenizer(manifest);
    tokenizer = &*own;
  }
  const ConceptSearch search =
      plan.request.exact_concept_tokens ? ConceptSearch::kExact : ConceptSearch::kPublished;
  for (size_t k = 0; k < plan.tasks.size(); ++k) {
    const std::string concept = plan.request.concepts.empty() ? "" : plan.request.concepts[k];
    try {
      plan.concept_tokens.push_back(
          find_concept_tokens(*tokenizer, plan.tasks[k].prompt, concept, search));
    } catch (const Error& e) {
      throw Error(e.kind(), "concepts[" + std::to_string(k) + "]", e.detail());
    }
  }
}

}  // namespace

bool GenerationPlan::antiseg() const {
  return std::any_of(stages.begin(), stages.end(), [](const StagePlan& s) { return s.antiseg; });
}

GenerationPlan plan_generation(const GenerateRequest& request, const Manifest& manifest,
                               const T5Tokenizer* tokenizer) {
  request.validate();
  GenerationPlan plan;
  plan.request = request;
  plan.tasks = resolve_tasks(plan.request);
  plan.reduction = reduction_of(plan.tasks);
  const int count = resolve_stage_count(plan, manifest);
  for (int i = 0; i < count; ++i) {
    const StageEntry& entry = manifest.stages[static_cast<size_t>(i)];
    StagePlan stage = plan_stage(plan.request, entry);
    const std::string side = std::to_string(stage.size);
    check_views_fit(plan.tasks, plan.request, stage.size,
                    "the " + side + "x" + side + (stage.latent ? " latents" : " pictures") +
                        " of stage " + std::to_string(stage.stage));
    if (stage.latent) check_latent_views(plan.tasks, plan.request, entry);
    if (plan.factorized()) check_filters_fit(plan.tasks, stage);
    plan.stages.push_back(std::move(stage));
  }
  std::vector<ViewPtr> views;
  for (const auto& task : plan.tasks) views.push_back(task.view);
  if (plan.factorized() && !filters_sum_to_identity(views, plan.stages.front().size)) {
    plan.notes.push_back(
        "the factorized views' filters do not sum to the identity: the "
        "picture is not the sum of its components");
  }
  plan_method(plan, manifest);
  plan_concepts(plan, manifest, tokenizer);
  return plan;
}

}  // namespace anagram
