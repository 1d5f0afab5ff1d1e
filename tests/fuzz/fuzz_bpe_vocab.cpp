// Fuzzes the CLIP BPE vocabulary reader (the merges text inside bpe_simple_vocab_16e6.txt.gz,
// a bundle file): any text, then an encoding with whatever vocabulary it accepts.
#include <cstddef>
#include <cstdint>
#include <string>

#include "anagram/core/error.h"
#include "anagram/text/clip_tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto tokenizer = anagram::ClipTokenizer::from_merges(
        std::string(reinterpret_cast<const char*>(data), size), "fuzz", 77);
    (void)tokenizer.encode("a photo of a dog");
  } catch (const anagram::Error&) {
  }
  return 0;
}
