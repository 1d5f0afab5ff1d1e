// Fuzzes the T5 tokenizer (IF's prompt preprocessing and SentencePiece encoding) on any text.
#include <cstddef>
#include <cstdint>
#include <string>

#include "anagram/core/error.h"
#include "anagram/text/t5_tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const anagram::T5Tokenizer tokenizer =
      anagram::T5Tokenizer::load(std::string(ANAGRAM_FUZZ_BUNDLE) + "/spiece.model");
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const auto encoding = tokenizer.encode(anagram::T5Tokenizer::preprocess(text));
    if (encoding.ids.size() != 77) __builtin_trap();
    (void)tokenizer.encode_plain(text);
  } catch (const anagram::Error&) {
  }
  return 0;
}
