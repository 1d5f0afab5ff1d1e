// Loading a bundle's TorchScript files, which are untrusted code, and running their probes.
//
// A TorchScript file is a program: it could call any operator LibTorch has, file and storage
// operators included (aten::from_file opens any path, read-write). So before a module's code
// runs at all:
//   1. its archive is read and refused if it defines __setstate__ (which torch::jit::load would
//      run while loading);
//   2. after loading, every graph it holds (all methods of all submodules and every function of
//      its compilation unit, with nested blocks) is walked, and any operator outside an
//      allow-list of tensor math is refused, naming the file and the operator.
// All LibTorch exceptions become one-line anagram::Error(kBundle).
#pragma once

#include <torch/script.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace anagram::detail {

// A module file of a bundle, for messages: "bundle 'models/x': the UNet 'unet.pt' ...".
struct ModuleFile {
  std::string bundle;                  // the bundle folder
  std::string file;                    // relative to the bundle folder
  std::string role;                    // "the UNet", "the text encoder", ...
  std::string folder_kind = "bundle";  // "scorer" for a scoring CLIP
  std::string path() const;
  std::string describe() const;  // "bundle '...': <role> '<file>'"
};

// Checks, loads onto `device`, checks the operators, casts to `dtype` (when given), eval().
std::shared_ptr<torch::jit::Module> load_script_module(const ModuleFile& file,
                                                       const c10::Device& device,
                                                       std::optional<c10::ScalarType> dtype);

// The operators (qualified names, sorted) used anywhere in the module's code.
std::vector<std::string> module_operators(const torch::jit::Module& module);
// Whether a model file may use the operator.
bool operator_allowed(const std::string& qualified_name);

// Runs `probe` (a small call through the module) and turns any exception into
// Error(kBundle, "<file>: fails on a probe input: <cause>").
torch::Tensor run_probe(const ModuleFile& file, const std::function<torch::Tensor()>& probe);
// Throws Error(kBundle) unless `tensor` has `expected` shape.
void expect_shape(const ModuleFile& file, const torch::Tensor& tensor,
                  const std::vector<int64_t>& expected);

}  // namespace anagram::detail
