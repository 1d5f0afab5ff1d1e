// anagram/error.h: the one exception type the library throws at its callers.
//
// The CLI maps Error::kind() to documented exit codes; nothing else in the library exits.
#pragma once

#include <stdexcept>
#include <string>

namespace anagram {

enum class ErrorKind {
  kInvalidArgument,  // bad user input (options, prompts, views); exit code 2
  kBundle,           // a model bundle that fails validation; exit code 2
  kDevice,           // the requested device or dtype cannot be used; exit code 2
  kIo,               // a file or folder that cannot be read or written; exit code 2
  kRuntime,          // a failure while working (e.g. inside LibTorch); exit code 1
};

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const { return kind_; }
  // Documented process exit code for this kind of error.
  int exit_code() const { return kind_ == ErrorKind::kRuntime ? 1 : 2; }

 private:
  ErrorKind kind_;
};

}  // namespace anagram
