// anagram/io/metadata.h: what every output records about the program that made it.
//
// Basic usage:
//   nlohmann::json j = {{"program", anagram::program_info()}, {"created",
//   anagram::utc_timestamp()}};
//
// (No tensors: the LibTorch build and thread counts are read from the library.)
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace anagram {

// {"name": "anagram", "version", "libtorch", "cuda_available", "intra_op_threads",
//  "libtorch_parallel" (its parallel backend), "libtorch_build_sha256" (of its build config)}
nlohmann::json program_info();

// Current time as "YYYY-MM-DDTHH:MM:SSZ".
std::string utc_timestamp();

}  // namespace anagram
