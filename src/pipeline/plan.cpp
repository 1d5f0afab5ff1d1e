#include "anagram/pipeline/plan.h"

#include "anagram/core/error.h"
#include "anagram/diffusion/antiseg.h"

namespace anagram {
namespace {

std::shared_ptr<const ViewStack> views_at(const std::vector<Task>& tasks, int64_t size,
                                          const c10::Device& device, const std::string& what) {
  std::vector<ViewPtr> views;
  for (size_t k = 0; k < tasks.size(); ++k) {
    if (!tasks[k].view->supports_size(size, size)) {
      try {
        tasks[k].view->check_size(size, size);
      } catch (const Error& e) {
        throw Error(
            ErrorKind::kInvalidArgument, "views[" + std::to_string(k) + "]",
            "view '" + tasks[k].view->name() + "' does not fit " + what + ": " + e.detail());
      }
    }
    views.push_back(tasks[k].view);
  }
  return std::make_shared<const ViewStack>(views, size, size, device);
}

DDPMSchedulerConfig scheduler_of(const Manifest& m, const nlohmann::json& config,
                                 const std::string& key) {
  try {
    return DDPMSchedulerConfig::from_json(config);
  } catch (const Error& e) {
    throw Error(ErrorKind::kBundle, "bundle '" + printable(m.dir.string()) + "': manifest.json '" +
                                        key + "': " + e.detail());
  }
}

}  // namespace

GenerationPlan plan_generation(const GenerateRequest& request, const Manifest& manifest,
                               const c10::Device& device, const T5Tokenizer* tokenizer) {
  request.validate();
  GenerationPlan plan;
  plan.request = request;
  GenerateRequest& r = plan.request;
  plan.tasks = resolve_tasks(r);

  // The cascade: every stage the bundle has, unless the request names fewer.
  const int available = manifest.has_stage(2) ? 2 : 1;
  if (r.stages == 0) r.stages = available;
  if (r.stages > available) {
    throw Error(ErrorKind::kInvalidArgument, "stages",
                "bundle '" + printable(manifest.name) +
                    "' has no stage II (super-resolution) "
                    "model; use stages 1 or a bundle exported with scripts/export_if.py --stage2");
  }
  for (int number = 1; number <= r.stages; ++number) {
    StagePlan stage;
    stage.stage = number;
    const StageEntry& entry = manifest.stage(number);
    stage.size = entry.image_size;
    stage.channels = entry.image_channels;
    const std::string where = manifest.schema_version == 1
                                  ? std::string("scheduler")
                                  : "stages[" + std::to_string(number - 1) + "].scheduler";
    stage.scheduler = scheduler_of(manifest, entry.scheduler, where);
    if (number == 1) {
      stage.steps = r.steps;
      stage.guidance = r.guidance;
    } else {
      if (!r.stage2_steps) r.stage2_steps = r.steps;
      if (!r.stage2_guidance) r.stage2_guidance = r.guidance;
      if (!r.noise_level) r.noise_level = static_cast<int>(entry.default_noise_level);
      stage.steps = *r.stage2_steps;
      stage.guidance = *r.stage2_guidance;
      stage.noising_scheduler =
          scheduler_of(manifest, entry.noising_scheduler, "stages[1].noising_scheduler");
      stage.noise_level = *r.noise_level;
      if (stage.noise_level >= stage.noising_scheduler->num_train_timesteps) {
        throw Error(ErrorKind::kInvalidArgument, "noise_level",
                    "must be below the augmentation schedule's " +
                        std::to_string(stage.noising_scheduler->num_train_timesteps) +
                        " timesteps, got " + std::to_string(stage.noise_level));
      }
    }
    if (stage.steps > stage.scheduler.num_train_timesteps) {
      throw Error(ErrorKind::kInvalidArgument, number == 1 ? "steps" : "stage2_steps",
                  "must be at most the bundle's " +
                      std::to_string(stage.scheduler.num_train_timesteps) +
                      " training timesteps, got " + std::to_string(stage.steps));
    }
    const int64_t size = entry.image_size;
    stage.views = views_at(plan.tasks, size, device,
                           "the " + std::to_string(size) + "x" + std::to_string(size) +
                               " pictures of stage " + std::to_string(number));
    plan.stages.push_back(std::move(stage));
  }

  // The method.
  const bool mtl = r.method == Method::kMtl;
  plan.balance = mtl && r.mtl.balance;
  if (plan.balance && !manifest.clip) {
    plan.balance = false;
    plan.notes.push_back("bundle '" + printable(manifest.name) +
                         "' has no noise-aware CLIP: noise vector balancing falls back to equal "
                         "weights");
  }
  plan.antiseg = mtl && r.antiseg;
  if (plan.antiseg && plan.tasks.size() < 2) {
    plan.antiseg = false;
    plan.notes.push_back(
        "anti-segregation needs two prompts to keep apart; with one it is skipped");
  }
  if (!plan.antiseg && !r.save_attention) return plan;

  const StageEntry& base = manifest.stage(1);
  if (!base.unet.attention || base.unet.attention->num_layers <= 0) {
    throw Error(ErrorKind::kBundle, "bundle '" + printable(manifest.dir.string()) +
                                        "' exposes no cross-attention layers (needed by "
                                        "anti-segregation and save_attention)");
  }
  const int64_t resolution = base.unet.attention->query_resolution;
  for (size_t k = 0; k < plan.tasks.size(); ++k) {
    if (!plan.tasks[k].view->supports_size(resolution, resolution)) {
      throw Error(ErrorKind::kInvalidArgument, "views[" + std::to_string(k) + "]",
                  "view '" + plan.tasks[k].view->name() + "' is not defined on the " +
                      std::to_string(resolution) + "x" + std::to_string(resolution) +
                      " attention maps that anti-segregation uses (switch anti-segregation "
                      "off)");
    }
  }
  plan.map_views = views_at(plan.tasks, resolution, device, "the attention maps");
  std::optional<T5Tokenizer> own;
  if (!tokenizer) {
    own =
        T5Tokenizer::load(manifest.path_of(manifest.tokenizer.file), manifest.tokenizer.max_length,
                          manifest.tokenizer.pad_id, manifest.tokenizer.eos_id);
    tokenizer = &*own;
  }
  const ConceptSearch search =
      r.exact_concept_tokens ? ConceptSearch::kExact : ConceptSearch::kPublished;
  for (size_t k = 0; k < plan.tasks.size(); ++k) {
    const std::string concept = r.concepts.empty() ? "" : r.concepts[k];
    try {
      plan.concept_tokens.push_back(
          find_concept_tokens(*tokenizer, plan.tasks[k].prompt, concept, search));
    } catch (const Error& e) {
      throw Error(e.kind(), "concepts[" + std::to_string(k) + "]", e.detail());
    }
  }
  return plan;
}

}  // namespace anagram
