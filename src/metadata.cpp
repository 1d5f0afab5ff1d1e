#include "anagram/metadata.h"

#include <torch/cuda.h>
#include <torch/version.h>

#include <ctime>

namespace anagram {

nlohmann::json program_info() {
  return {{"name", "anagram"},
          {"version", ANAGRAM_VERSION},
          {"libtorch", TORCH_VERSION},
          {"cuda_available", torch::cuda::is_available()}};
}

std::string utc_timestamp() {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buffer;
}

}  // namespace anagram
