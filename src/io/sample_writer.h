// Writing one sample's folder: for each stage the anagram, the picture under each view and the
// captioned sheet; optional attention heat maps; metadata.json; all committed at once
// (SampleFolder). The last stage's files have plain names (anagram.png, sheet.png, ...); those
// of earlier stages carry their size (anagram_64.png, sheet_64.png, ...).
#pragma once

#include <torch/types.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "anagram/views/task.h"
#include "anagram/views/views.h"

namespace anagram::detail {

struct StageImages {
  torch::Tensor image;     // (C, S, S) float32 in [-1, 1]
  const ViewStack* views;  // the tasks' views at this stage's size
};

// Writes OUT/sample_NNN/ (the next free number), or OUT/<folder_name>/, and returns its path.
// `metadata` gets the written files' names added. attention_maps: per step (N, R, R), or empty.
std::filesystem::path write_sample(const std::filesystem::path& out, const std::vector<Task>& tasks,
                                   const std::vector<StageImages>& stages,
                                   const std::vector<torch::Tensor>& attention_maps,
                                   nlohmann::json metadata, const std::string& folder_name = "");

}  // namespace anagram::detail
