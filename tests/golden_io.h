// Reads golden tensors written by scripts/golden_io.py (buffers of a TorchScript module).
#pragma once

#include <torch/script.h>

#include <map>
#include <string>

namespace anagram::testing {

inline std::map<std::string, torch::Tensor> load_golden(const std::string& path) {
  torch::jit::Module module = torch::jit::load(path, torch::kCPU);
  std::map<std::string, torch::Tensor> tensors;
  for (const auto& buffer : module.named_buffers(/*recurse=*/false)) {
    tensors[buffer.name] = buffer.value;
  }
  return tensors;
}

}  // namespace anagram::testing
