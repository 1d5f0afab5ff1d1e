// TorchScript archives that try to run code while they load: each would write `marker` (through
// aten::save) if its code ran. Used by test_script_module.cpp and tools/make_bad_bundles.cpp.
//
// Each starts from a module saved by LibTorch and edits its code files the way an attacker
// would, to slip a __setstate__ (or code the compiler evaluates) past a check of the text.
#pragma once

#include <caffe2/serialize/inline_container.h>
#include <torch/script.h>

#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace anagram::testing {

struct HostileArchive {
  std::string name;    // e.g. "setstate_continuation"
  std::string bytes;   // the .pt file
  std::string needle;  // what the refusal must say
};

inline std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

// Saves `module`, then rewrites its archive: `edit` may change any record's name or bytes (an
// empty name drops it). Debug records are dropped: they describe the code as it was.
inline std::string save_edited(
    torch::jit::Module& module,
    const std::function<void(std::string& name, std::string& bytes)>& edit) {
  std::ostringstream saved;
  module.save(saved);
  std::istringstream in(saved.str());
  caffe2::serialize::PyTorchStreamReader reader(&in);
  std::string out;
  caffe2::serialize::PyTorchStreamWriter writer([&](const void* data, size_t size) {
    out.append(static_cast<const char*>(data), size);
    return size;
  });
  writer.setMinVersion(reader.version());
  for (std::string name : reader.getAllRecords()) {
    if (name == "version" || name == ".data/version") continue;  // the writer adds it
    if (name.size() > 10 && name.compare(name.size() - 10, 10, ".debug_pkl") == 0) continue;
    auto [data, size] = reader.getRecord(name);
    std::string bytes(static_cast<const char*>(data.get()), size);
    edit(name, bytes);
    if (!name.empty()) writer.writeRecord(name, bytes.data(), bytes.size());
  }
  writer.writeEndOfFile();
  return out;
}

// A module whose state round-trips through __getstate__/__setstate__; __setstate__ writes the
// marker (directly or through `helper`).
inline torch::jit::Module stateful(const std::string& class_name, const std::string& marker,
                                   bool through_helper) {
  torch::jit::Module module(class_name);
  const std::string save = "torch.save(1, \"" + marker + "\")";
  module.define(R"(
def __getstate__(self) -> Tuple[int, int]:
    return (1, 2)

def helper(self) -> None:
    )" + save + R"(

def __setstate__(self, state: Tuple[int, int]) -> None:
    )" + (through_helper ? std::string("self.helper()") : save) +
                R"(

def forward(self, x: Tensor) -> Tensor:
    return x
)");
  return module;
}

// At least five ways past a pattern over the text, each of which ran its code under
// torch::jit::load before the checks of the archive's parsed code.
inline std::vector<HostileArchive> hostile_archives(const std::string& marker) {
  std::vector<HostileArchive> out;
  const auto code_edit = [](const std::function<std::string(std::string)>& change) {
    return [change](std::string& name, std::string& bytes) {
      if (name.rfind("code/", 0) == 0 && name.size() > 3 &&
          name.compare(name.size() - 3, 3, ".py") == 0) {
        bytes = change(bytes);
      }
    };
  };
  const auto split_def = [](const std::string& code) {
    return replace_all(code, "def __setstate__", "def \\\n__setstate__");
  };
  {
    auto m = stateful("Hostile", marker, false);
    out.push_back({"setstate_continuation", save_edited(m, code_edit(split_def)), "__setstate__"});
  }
  {
    // A comment inside the parameter list, a '#' and quotes in a string: a scanner that strips
    // comments or strings by pattern loses its place; the lexer does not.
    auto m = stateful("Hostile", marker, false);
    out.push_back(
        {"setstate_comment_tricks",
         save_edited(m, code_edit([&](std::string code) {
                       code = replace_all(code, "def __setstate__(",
                                          "def \\\n__setstate__(  # \"\"\" ' not code\n    ");
                       return replace_all(code, "def __getstate__", "def \\\n  __getstate__");
                     })),
         "__setstate__"});
  }
  {
    // Unicode lookalikes (a Cyrillic 's'): not an identifier to TorchScript's lexer.
    auto m = stateful("Hostile", marker, false);
    out.push_back({"setstate_unicode_name", save_edited(m, code_edit([&](std::string code) {
                                                          return replace_all(split_def(code),
                                                                             "__setstate__(",
                                                                             "__\xd1\x95"
                                                                             "etstate__(");
                                                        })),
                   "not valid TorchScript"});
  }
  {
    // __setstate__ on a submodule, under a continuation.
    torch::jit::Module parent("Parent");
    parent.register_module("child", stateful("Child", marker, false));
    parent.define(R"(
def forward(self, x: Tensor) -> Tensor:
    return self.child.forward(x)
)");
    out.push_back(
        {"setstate_in_submodule", save_edited(parent, code_edit(split_def)), "__setstate__"});
  }
  {
    // __setstate__ only calls a method, which writes.
    auto m = stateful("Hostile", marker, true);
    out.push_back({"setstate_calls_method", save_edited(m, code_edit(split_def)), "__setstate__"});
  }
  {
    // The code file's name in upper case: the loader's zip lookup ignores case.
    auto m = stateful("Hostile", marker, false);
    out.push_back({"setstate_upper_case_name",
                   save_edited(m,
                               [](std::string& name, std::string&) {
                                 if (name == "code/__torch__.py") name = "code/__torch__.PY";
                               }),
                   "the loader would also find"});
  }
  {
    // No __setstate__ at all: the compiler evaluates a default argument while it compiles.
    torch::jit::Module m("Hostile");
    m.define(R"(
def forward(self, x: Tensor, y: Optional[int] = None) -> Tensor:
    return x
)");
    out.push_back({"default_argument_runs",
                   save_edited(m, code_edit([&](std::string code) {
                                 return replace_all(code, "Optional[int]=None",
                                                    "Tuple[()]=torch.save(1, \"" + marker + "\")");
                               })),
                   "not a literal"});
  }
  {
    // ... and a class constant.
    torch::jit::Module m("Hostile");
    m.define(R"(
def forward(self, x: Tensor) -> Tensor:
    return x
)");
    out.push_back({"class_constant_runs",
                   save_edited(m, code_edit([&](std::string code) {
                                 return replace_all(
                                     code, "class Hostile(Module):\n",
                                     "class Hostile(Module):\n  FOO : Final[Tuple[()]] = "
                                     "torch.save(1, \"" +
                                         marker + "\")\n");
                               })),
                   "not a literal"});
  }
  {
    // Blank lines enough to overflow the stack of TorchScript's recursive lexer.
    torch::jit::Module m("Hostile");
    m.define(R"(
def forward(self, x: Tensor) -> Tensor:
    return x
)");
    out.push_back({"lexer_stack_overflow", save_edited(m, code_edit([](std::string code) {
                                                         return std::string(300000, '\n') + code;
                                                       })),
                   "lines in a row without code"});
  }
  return out;
}

}  // namespace anagram::testing
