// Reads golden tensors written by scripts/anagram_py/golden_io.py (buffers of a TorchScript
// module), and the comparisons the golden tests make.
#pragma once

#include <torch/script.h>

#include <algorithm>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace anagram::testing {

inline std::map<std::string, torch::Tensor> load_golden(const std::string& path) {
  torch::jit::Module module = torch::jit::load(path, torch::kCPU);
  std::map<std::string, torch::Tensor> tensors;
  for (const auto& buffer : module.named_buffers(/*recurse=*/false)) {
    tensors[buffer.name] = buffer.value;
  }
  return tensors;
}

// One tensor of a golden file, by name; a missing name is a test error that says which.
inline const torch::Tensor& golden_tensor(const std::map<std::string, torch::Tensor>& golden,
                                          const std::string& name) {
  const auto it = golden.find(name);
  if (it == golden.end()) throw std::runtime_error("golden tensor '" + name + "' is missing");
  return it->second;
}

// A golden tensor of integers (timesteps) as a vector.
inline std::vector<int64_t> to_int64_vector(const torch::Tensor& t) {
  const torch::Tensor c = t.to(torch::kInt64).contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

// Largest |a - b| (any devices and dtypes).
inline double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kCPU, torch::kDouble) - b.to(torch::kCPU, torch::kDouble))
      .abs()
      .max()
      .item<double>();
}

// Largest |actual - expected| relative to expected's largest magnitude.
inline double relative_diff(const torch::Tensor& actual, const torch::Tensor& expected) {
  return max_abs_diff(actual, expected) /
         std::max(expected.to(torch::kDouble).abs().max().item<double>(), 1e-12);
}

}  // namespace anagram::testing
