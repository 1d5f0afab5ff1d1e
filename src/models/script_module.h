// Loading a bundle's TorchScript files, which are untrusted code, and running their probes.
//
// A TorchScript file is a program: it could call any operator LibTorch has, file and storage
// operators included (aten::from_file opens any path, read-write). torch::jit::load runs some
// of it while loading (a class's __setstate__; default arguments and class constants, which the
// compiler evaluates). So before torch::jit::load sees the file:
//   1. every code file of the archive is parsed with TorchScript's own parser and refused if it
//      defines __setstate__/__getstate__, has a default or class constant that is not a literal,
//      names an operator outside the allow-list or a custom C++ class, or is deep or long enough
//      to overflow the stack of TorchScript's recursive parser (archive_scan.h);
//   2. all of that code is compiled (which runs none of it) and every graph (every method of
//      every class, every function, with nested blocks) is walked: any operator outside an
//      allow-list of tensor math is refused, naming the file and the operator.
// After loading, the module's graphs are walked once more. The file is opened once, so the
// checks and the loader read the same bytes. All LibTorch exceptions become one-line
// anagram::Error(kBundle).
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

// While alive, warnings raised on this thread (a model's code may call torch.warn with any
// text) go to the log as one line with control characters escaped, never raw to the terminal.
// Every call into a model's code holds one.
class ModelWarnings {
 public:
  ModelWarnings();
  ~ModelWarnings();
  ModelWarnings(const ModelWarnings&) = delete;
  ModelWarnings& operator=(const ModelWarnings&) = delete;

 private:
  c10::WarningHandler* previous_;
};

// Runs `probe` (a small call through the module) and turns any exception into
// Error(kBundle, "<file>: fails on a probe input: <cause>").
torch::Tensor run_probe(const ModuleFile& file, const std::function<torch::Tensor()>& probe);
// Throws Error(kBundle) unless `tensor` has `expected` shape.
void expect_shape(const ModuleFile& file, const torch::Tensor& tensor,
                  const std::vector<int64_t>& expected);

}  // namespace anagram::detail
