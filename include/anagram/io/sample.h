// anagram/io/sample.h: one generated sample as plain data: what Session::generate returns,
// write_sample writes and tests inspect.
//
// Basic usage:
//   anagram::Sample sample = session->generate(request);
//   const anagram::StageResult& last = sample.stages.back();
//   torch::Tensor picture = last.image;       // (3, 256, 256) float32 in [-1, 1], on the CPU
//   torch::Tensor upside_down = last.seen[1];  // the picture as task 1's view shows it
//   anagram::write_sample("out", sample);     // out/sample_000/ (sample_writer.h)
//
// Where the tensors live: on the host (CPU), float32. Session::generate moves a finished
// sample there in one place (one copy per tensor, after the last step), so the writer, the
// scorers and tests never meet a device tensor or a device-bound helper.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

#include "anagram/views/task.h"

namespace anagram {

// What the method did at each step of one stage.
struct StageRecords {
  torch::Tensor weights;         // (steps, N) combination weights alpha_k
  torch::Tensor scales;          // (steps) rectification scale c
  torch::Tensor clip_scores;     // (steps, N) noise-aware CLIP scores s_k, or undefined
  torch::Tensor antiseg_losses;  // (K) overlap loss before each optimised step, or undefined
  torch::Tensor attention_maps;  // (steps, N, R, R) concept maps, views undone, or undefined
};

struct StageTiming {
  double seconds = 0;       // the stage, wall clock
  double unet_seconds = 0;  // with RunOptions::profile: inside the sampling loop's UNet calls
  int64_t unet_calls = 0;
  double antiseg_seconds = 0;  // with profile: the anti-segregation steps
  int64_t antiseg_calls = 0;
  double peak_memory_mib = 0;  // CUDA: peak allocated in this stage; CPU: process peak RSS
};

struct StageResult {
  int stage = 1;  // 1-based position in the cascade
  int64_t size = 0;
  int steps = 0;
  torch::Tensor image;  // (C, S, S) float32 in [-1, 1]
  torch::Tensor seen;   // (N, C, S, S) float32: entry k is `image` through task k's view
  StageRecords records;
  StageTiming timing;
};

struct Sample {
  std::vector<Task> tasks;  // task k: view k and prompt k (style applied)
  int index = 0;            // position in its request: seed = request seed + index
  uint64_t seed = 0;
  std::vector<StageResult> stages;  // first stage first; the last is the anagram
  double seconds = 0;               // sampling, all stages
  double encode_seconds = 0;        // prompt encoding this sample waited for (0 when cached)
  // What made it and what the method did (pipeline/sample_metadata.h): reruns the sample
  // byte for byte. write_sample adds the names of the files it writes.
  nlohmann::json metadata;
};

}  // namespace anagram
