// The decision, before LibTorch compiles or runs anything, on the code files of an untrusted
// TorchScript archive.
//
// Each code file is read with TorchScript's own lexer and parser (the ones torch::jit::load
// uses), so continuations, strings, comments and identifiers are seen exactly as the loader will
// see them, never through a pattern over the text. A file is refused when any of these holds:
//   - it defines __setstate__ or __getstate__ anywhere (torch::jit::load runs __setstate__ while
//     unpickling the module);
//   - a default argument or a class constant is anything but a literal (the compiler evaluates
//     both, with the interpreter, while it compiles);
//   - it names an operator outside the allow-list through torch.NAME or ops.NS.NAME, or a custom
//     C++ class (torch.classes), anywhere, even where it would never run;
//   - it is larger, deeper or longer-lined than TorchScript's recursive lexer, parser and
//     compiler survive (they overflow the stack on, e.g., 100 000 blank lines or 10 000 nested
//     brackets).
// Everything else about the code (the operators that method calls reach) is checked on the
// compiled graphs, still before the archive's objects are unpickled: script_module.cpp.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace anagram::detail {

// What a code file defines at its top level, for compiling it before loading.
struct CodeFacts {
  std::vector<std::string> classes;    // class names
  std::vector<std::string> functions;  // function names
  int64_t constants = 0;               // 1 + the highest CONSTANTS.cN the file uses
};

// The most bytes one code file may have.
constexpr size_t kMaxCodeFileBytes = 16u << 20;

// Parses and checks one code file. Throws Error(kBundle) with a one-line reason (without the
// file's name: the caller adds it).
CodeFacts scan_code_file(const std::string& text);

}  // namespace anagram::detail
