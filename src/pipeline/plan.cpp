#include "anagram/pipeline/plan.h"

#include <algorithm>

#include "anagram/core/error.h"
#include "anagram/core/error_text.h"
#include "anagram/diffusion/antiseg.h"
#include "anagram/models/text_encoder.h"
#include "anagram/views/factor.h"

namespace anagram {
namespace {

// Every task's view must be defined on a size x size grid (`what` names the grid for errors).
void check_views_fit(const std::vector<Task>& tasks, int64_t size, const std::string& what,
                     const std::string& hint = "") {
  for (size_t k = 0; k < tasks.size(); ++k) {
    try {
      tasks[k].view->check_size(size, size);
    } catch (const Error& e) {
      throw Error(
          ErrorKind::kInvalidArgument, "views[" + std::to_string(k) + "]",
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

// The request's stage count against the bundle's cascade (0: every stage it has).
int resolve_stage_count(GenerateRequest& r, const Manifest& manifest) {
  const int available = static_cast<int>(manifest.stages.size());
  if (r.stages == 0) r.stages = available;
  if (r.stages > available) {
    throw Error(
        ErrorKind::kInvalidArgument, "stages",
        "bundle '" + printable(manifest.name) +
            "' has no stage II (super-resolution) "
            "model; use stages 1 or a bundle exported with scripts/export/export_if.py --stage2");
  }
  return r.stages;
}

// Steps, guidance and (for a super-resolution stage) the noise level of one stage, with the
// request's stage II defaults resolved into it.
StagePlan plan_stage(GenerateRequest& r, const StageEntry& entry) {
  StagePlan stage;
  stage.stage = entry.stage;
  stage.size = entry.image_size;
  stage.channels = entry.image_channels;
  stage.scheduler = entry.scheduler;
  stage.steps = r.steps;
  stage.guidance = r.guidance;
  std::string steps_field = "steps";
  if (entry.noising_scheduler) {
    if (!r.stage2_steps) r.stage2_steps = r.steps;
    if (!r.stage2_guidance) r.stage2_guidance = r.guidance;
    if (!r.noise_level) r.noise_level = static_cast<int>(entry.default_noise_level);
    stage.steps = *r.stage2_steps;
    stage.guidance = *r.stage2_guidance;
    steps_field = "stage2_steps";
    stage.super_resolution = SuperResolution{*entry.noising_scheduler, *r.noise_level};
    const int64_t limit = entry.noising_scheduler->num_train_timesteps;
    if (stage.super_resolution->noise_level >= limit) {
      throw Error(ErrorKind::kInvalidArgument, "noise_level",
                  "must be below the augmentation schedule's " + std::to_string(limit) +
                      " timesteps, got " + std::to_string(*r.noise_level));
    }
  }
  if (stage.steps > stage.scheduler.num_train_timesteps) {
    throw Error(ErrorKind::kInvalidArgument, steps_field,
                "must be at most the bundle's " +
                    std::to_string(stage.scheduler.num_train_timesteps) +
                    " training timesteps, got " + std::to_string(stage.steps));
  }
  return stage;
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
  check_views_fit(plan.tasks, r,
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
  const int count = resolve_stage_count(plan.request, manifest);
  for (int i = 0; i < count; ++i) {
    StagePlan stage = plan_stage(plan.request, manifest.stages[static_cast<size_t>(i)]);
    const std::string side = std::to_string(stage.size);
    check_views_fit(
        plan.tasks, stage.size,
        "the " + side + "x" + side + " pictures of stage " + std::to_string(stage.stage));
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
