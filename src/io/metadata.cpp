#include "anagram/io/metadata.h"

#include <ATen/Parallel.h>
#include <ATen/Version.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <ctime>

#include "anagram/core/threads.h"
#include "core/sha256.h"

namespace anagram {

nlohmann::json program_info() {
  // The thread counts and LibTorch's build settings decide the bytes a seed gives on the CPU
  // (reductions split across threads round differently), so they are recorded with every output.
  std::string build = at::show_config();
  const CpuThreads threads = cpu_threads();
  return {{"name", "anagram"},
          {"version", ANAGRAM_VERSION},
          {"libtorch", TORCH_VERSION},
          {"cuda_available", torch::cuda::is_available()},
          {"intra_op_threads", threads.intra_op},
          {"blas_threads", threads.blas},
          {"libtorch_parallel", at::get_parallel_info().substr(0, 400)},
          {"libtorch_build_sha256", detail::sha256_hex(build)}};
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
