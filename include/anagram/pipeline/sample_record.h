// anagram/pipeline/sample_record.h: reading back a sample folder that `gen` or `batch` wrote
// (metadata.json and its pictures), for `anagram score` and `anagram animate`.
//
// The folder is the user's file: metadata.json is size- and depth-bounded and read with the
// same typed checks as a request, and the picture it names must stay inside the folder.
//
//   anagram::SampleRecord s = anagram::read_sample_record("out/sample_000");   // last stage
//   anagram::RgbImage picture = anagram::read_png(s.picture);
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include "anagram/pipeline/request.h"
#include "anagram/views/task.h"

namespace anagram {

struct SampleRecord {
  std::filesystem::path folder;
  GenerateRequest request;
  std::vector<Task> tasks;  // views made from the request, prompts with the style applied
  uint64_t seed = 0;
  int picture_size = 0;           // side of the chosen stage's picture
  std::filesystem::path picture;  // that picture (anagram.png or anagram_64.png)
};

// The stage whose picture has side `size` (64, 256), or the last stage for 0. Throws
// Error(kInvalidArgument) naming the folder for a missing or malformed metadata.json.
SampleRecord read_sample_record(const std::filesystem::path& folder, int size = 0);

}  // namespace anagram
