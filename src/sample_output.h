// Writing one sample's folder: the anagram, the picture under each view, the captioned sheet,
// optional attention heat maps, and metadata.json, all committed at once (SampleFolder).
#pragma once

#include <torch/types.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "anagram/generate.h"
#include "anagram/views.h"

namespace anagram::detail {

struct SampleImages {
  torch::Tensor image;                        // (C, S, S) float32 in [-1, 1]
  std::vector<torch::Tensor> attention_maps;  // per step (N, R, R), or empty
};

// Writes OUT/<name>/ and returns its path. `metadata` gets the written files' names added.
std::filesystem::path write_sample(const std::filesystem::path& out, const std::string& name,
                                   const ViewStack& views, const std::vector<Task>& tasks,
                                   const SampleImages& images, nlohmann::json metadata);

}  // namespace anagram::detail
