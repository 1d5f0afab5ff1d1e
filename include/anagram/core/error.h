// anagram/core/error.h: the one exception type the library throws at its callers.
//
// An Error has a kind (which the CLI maps to documented exit codes), an optional field (the
// request or manifest field at fault, e.g. "steps" or "stages[1].unet.file": batch jobs and the
// CLI report the same errors and may show the field their own way) and a one-line detail.
// Nothing in the library exits the process.
//
// Basic usage:
//   throw anagram::Error(anagram::ErrorKind::kInvalidArgument, "steps", "must be positive");
//   ...
//   catch (const anagram::Error& e) { std::cerr << e.what(); return e.exit_code(); }  // 2
#pragma once

#include <stdexcept>
#include <string>

namespace anagram {

enum class ErrorKind {
  kInvalidArgument,  // bad user input (options, prompts, views, request files); exit code 2
  kBundle,           // a model bundle that fails validation; exit code 2
  kDevice,           // the requested device or dtype cannot be used; exit code 2
  kIo,               // a file or folder that cannot be read or written; exit code 2
  kRuntime,          // a failure while working (e.g. inside LibTorch); exit code 1
  kInterrupted,      // stopped by a signal between steps; exit code 130
};

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& detail)
      : std::runtime_error(detail), kind_(kind), detail_(detail) {}
  // what() is "field: detail".
  Error(ErrorKind kind, const std::string& field, const std::string& detail)
      : std::runtime_error(field.empty() ? detail : field + ": " + detail),
        kind_(kind),
        field_(field),
        detail_(detail) {}

  ErrorKind kind() const { return kind_; }
  const std::string& field() const { return field_; }    // "" when not about one field
  const std::string& detail() const { return detail_; }  // what() without the field
  // Documented process exit code for this kind of error.
  int exit_code() const {
    switch (kind_) {
      case ErrorKind::kRuntime:
        return 1;
      case ErrorKind::kInterrupted:
        return 130;
      default:
        return 2;
    }
  }

 private:
  ErrorKind kind_;
  std::string field_;
  std::string detail_;
};

}  // namespace anagram
