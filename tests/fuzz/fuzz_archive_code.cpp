// Fuzzes the scanner of TorchScript code files (item 1 of issue 17): any bytes as a code file of a
// model archive. It must decide (accept, or refuse with anagram::Error) without crashing: its
// limits must stop every input that would overflow TorchScript's recursive lexer or parser.
#include <cstddef>
#include <cstdint>
#include <string>

#include "anagram/core/error.h"
#include "models/archive_scan.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto facts =
        anagram::detail::scan_code_file(std::string(reinterpret_cast<const char*>(data), size));
    (void)facts;
  } catch (const anagram::Error&) {
  }
  return 0;
}
