// anagram/pipeline/sample_metadata.h: a sample's metadata.json, built from the plan that made
// it, the records it carries and what the session knows about the run.
//
// Basic usage (Session::generate does this for every sample):
//   sample.metadata = anagram::sample_metadata(plan, sample, context);
//
// The metadata holds the resolved request of exactly this sample (seed set, one sample), so
// `anagram gen --from-metadata` reruns it byte for byte on the same bundle, device and thread
// counts; what the method did per step (weights, scales, CLIP scores, anti-segregation losses);
// and what made it (program, bundle hash, device, timings).
#pragma once

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <nlohmann/json.hpp>
#include <string>

#include "anagram/io/sample.h"
#include "anagram/models/bundle.h"
#include "anagram/pipeline/plan.h"

namespace anagram {

// What a sample's metadata needs beyond the plan and the sample.
struct MetadataContext {
  nlohmann::json session;  // SessionOptions::to_json(), as applied
  const Manifest* manifest = nullptr;
  c10::Device device{c10::kCPU};
  c10::ScalarType dtype = c10::ScalarType::Float;
  double load_seconds = 0;
  std::string command_line;
  nlohmann::json rerun;  // RunOptions::rerun; recorded when not null
};

nlohmann::json sample_metadata(const GenerationPlan& plan, const Sample& sample,
                               const MetadataContext& context);

// Whether balancing clamped any CLIP score of the sample to `min_score` (a sign that the
// noise-aware CLIP does not fit the pictures; worth a warning).
bool clip_scores_clamped(const Sample& sample, double min_score);

}  // namespace anagram
