// Fuzzes the bundle manifest reader: any bytes as manifest.json of the tiny bundle's folder.
// Anything but a clean anagram::Error (a crash, a sanitizer report, another exception) is a bug.
#include <cstddef>
#include <cstdint>
#include <string>

#include "anagram/core/error.h"
#include "anagram/models/bundle.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const anagram::Manifest m = anagram::parse_manifest(
        std::string(reinterpret_cast<const char*>(data), size), ANAGRAM_FUZZ_BUNDLE);
    (void)m.named_files();
    (void)anagram::printable(m.name);
  } catch (const anagram::Error&) {
  }
  return 0;
}
