// Loading TorchScript files and turning LibTorch exceptions into one-line anagram::Errors.
#pragma once

#include <torch/script.h>

#include <string>

#include "anagram/error.h"

namespace anagram::detail {

// LibTorch messages carry a C++ backtrace after the first line; users get the first line only.
inline std::string first_line(const std::string& message) {
  const auto end = message.find('\n');
  return end == std::string::npos ? message : message.substr(0, end);
}

// Loads `path` onto `device` and casts its parameters to `dtype`.
inline torch::jit::Module load_module(const std::string& path, const c10::Device& device,
                                      c10::ScalarType dtype, const std::string& what) {
  try {
    torch::jit::Module module = torch::jit::load(path, device);
    module.eval();
    module.to(dtype);
    return module;
  } catch (const c10::Error& e) {
    throw Error(ErrorKind::kBundle, "cannot load " + what + " '" + path +
                                        "': " + first_line(e.what_without_backtrace()));
  }
}

}  // namespace anagram::detail
