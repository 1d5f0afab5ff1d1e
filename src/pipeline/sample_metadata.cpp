#include "anagram/pipeline/sample_metadata.h"

#include "anagram/core/dtype.h"
#include "anagram/diffusion/antiseg.h"
#include "anagram/io/metadata.h"

namespace anagram {
namespace {

using nlohmann::json;

// A host tensor of 1 or 2 dims -> [..] or [[..] x rows].
json to_rows(const torch::Tensor& table) {
  const torch::Tensor host = table.to(torch::kCPU, torch::kDouble).contiguous();
  const int64_t rows = host.size(0), cols = host.dim() > 1 ? host.size(1) : 1;
  const double* data = host.data_ptr<double>();
  json out = json::array();
  for (int64_t r = 0; r < rows; ++r) {
    if (cols == 1) {  // a 1-d table, or one task: a flat list
      out.push_back(data[r]);
    } else {
      out.push_back(std::vector<double>(data + r * cols, data + (r + 1) * cols));
    }
  }
  return out;
}

json per_step(const StageRecords& records) {
  json j = {{"weights", to_rows(records.weights)}, {"scales", to_rows(records.scales)}};
  if (records.clip_scores.defined()) j["clip_scores"] = to_rows(records.clip_scores);
  if (records.antiseg_losses.defined()) j["antiseg_losses"] = to_rows(records.antiseg_losses);
  return j;
}

json stage_json(const GenerationPlan& plan, const StagePlan& stage, const StageResult& result,
                const c10::Device& device) {
  json j = {{"stage", stage.stage},
            {"size", stage.picture_size()},
            {"steps", stage.steps},
            {"guidance", stage.guidance},
            {"scheduler", to_json(stage.scheduler)},
            {"per_step", per_step(result.records)},
            {"seconds", result.timing.seconds},
            {"seconds_per_step", result.timing.seconds / stage.steps},
            {"peak_memory_mib", result.timing.peak_memory_mib},
            {"peak_memory_kind", device.is_cuda() ? "cuda allocated" : "host resident set"}};
  if (stage.super_resolution) {
    j["noise_level"] = stage.super_resolution->noise_level;
    j["noising_scheduler"] = stage.super_resolution->noising_scheduler.to_json();
  }
  if (stage.latent) {
    j["latent"] = {{"size", stage.size},
                   {"channels", stage.channels},
                   {"upscale", stage.latent->upscale},
                   {"vae_tiling", vae_tiling_name(stage.latent->tiling)}};
  }
  if (stage.text_model != 0) j["text_encoder"] = "stage " + std::to_string(stage.text_model);
  if (stage.antiseg) {
    const AntiSegOptions& options = plan.request.antiseg_options;
    j["antiseg_steps"] = options.resolved_steps(stage.steps);
    j["antiseg_target"] =
        options.target.value_or(default_overlap_target(static_cast<int64_t>(plan.tasks.size())));
  }
  return j;
}

json method_json(const GenerationPlan& plan) {
  const GenerateRequest& request = plan.request;
  const bool mtl = request.method == Method::kMtl;
  const bool sum = plan.factorized();
  json method = {{"name", method_name(request.method)},
                 {"combiner", mtl ? (sum ? "mtl-sum" : "mtl") : (sum ? "sum" : "mean")},
                 {"reduction", sum ? "sum" : "mean"}};
  if (mtl) {
    MtlOptions options = request.mtl;
    options.balance = plan.balance;
    method["balance"] = plan.balance;
    method["rectify"] = options.rectify;
    method["antiseg"] = plan.antiseg();
    method["mtl_options"] = options.to_json();
    if (plan.antiseg()) method["antiseg_options"] = request.antiseg_options.to_json();
  }
  if (!plan.concept_tokens.empty()) method["concept_tokens"] = plan.concept_tokens;
  if (!plan.notes.empty()) method["notes"] = plan.notes;
  return method;
}

}  // namespace

json sample_metadata(const GenerationPlan& plan, const Sample& sample,
                     const MetadataContext& context) {
  GenerateRequest this_sample = plan.request;
  this_sample.seed = sample.seed;
  this_sample.num_samples = 1;
  json stages = json::array();
  for (size_t s = 0; s < sample.stages.size(); ++s) {
    stages.push_back(stage_json(plan, plan.stages.at(s), sample.stages[s], context.device));
  }
  const Manifest& m = *context.manifest;
  json metadata = {
      {"program", program_info()},
      {"created", utc_timestamp()},
      {"command_line", context.command_line},
      {"request", this_sample.to_json()},
      {"session", context.session},
      {"sample_index", sample.index},
      {"seed", sample.seed},
      {"bundle",
       {{"name", m.name},
        {"path", m.dir.string()},
        {"manifest_sha256", m.sha256},
        {"schema_version", m.schema_version}}},
      {"device", context.device.str()},
      {"dtype", dtype_name(context.dtype)},
      {"method", method_json(plan)},
      {"stages", stages},
      {"timings",
       {{"load_seconds", context.load_seconds},
        {"encode_seconds", sample.encode_seconds},
        {"sampling_seconds", sample.seconds}}},
  };
  if (!context.rerun.is_null()) metadata["rerun"] = context.rerun;
  return metadata;
}

bool clip_scores_clamped(const Sample& sample, double min_score) {
  for (const auto& stage : sample.stages) {
    const torch::Tensor& scores = stage.records.clip_scores;
    if (scores.defined() && scores.numel() > 0 && scores.min().item<double>() <= min_score) {
      return true;
    }
  }
  return false;
}

}  // namespace anagram
