// anagram/core/error_text.h: any exception reduced to the one line a user should see.
//
// Basic usage:
//   try { run(); } catch (const std::exception& e) {
//     std::cerr << "anagram: error: " << anagram::describe_exception(e) << "\n";
//   }
//   spdlog::info("bundle '{}'", anagram::printable(manifest.name));  // text read from a file
#pragma once

#include <exception>
#include <string>

namespace anagram {

// One line, at most `max_length` bytes, no control characters:
//   c10::Error                   its message without the C++ backtrace;
//   TorchScript interpreter      the error at the bottom of its TorchScript traceback
//   errors (JITException, ...)   ("RuntimeError: ..." without the traceback lines);
//   anything else                the first line of what().
std::string describe_exception(const std::exception& e, size_t max_length = 300);

// `text` shortened to `max_length` bytes (on a UTF-8 boundary, with "..."), newlines and other
// control characters shown as escapes, for quoting user input inside a one-line error.
std::string quote_for_error(const std::string& text, size_t max_length = 60);

// Text from a file (a manifest's names, paths) made safe for a terminal: control characters
// become '?', and it is cut at `max_length` bytes with "...".
std::string printable(const std::string& text, size_t max_length = 200);

}  // namespace anagram
