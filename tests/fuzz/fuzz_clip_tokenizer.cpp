// Fuzzes the CLIP BPE tokenizer (GLIDE's) on any text; it must stay fast on long words.
#include <cstddef>
#include <cstdint>
#include <string>

#include "anagram/core/error.h"
#include "anagram/text/clip_tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const anagram::ClipTokenizer tokenizer = anagram::ClipTokenizer::load(
      std::string(ANAGRAM_FUZZ_BUNDLE) + "/bpe_simple_vocab_16e6.txt.gz");
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const auto encoding = tokenizer.encode(text);
    if (encoding.tokens.size() != 77 || encoding.length < 2 || encoding.length > 77) {
      __builtin_trap();
    }
  } catch (const anagram::Error&) {
  }
  return 0;
}
