// Fuzzes the SentencePiece model reader (spiece.model is a bundle file) and, for models it
// accepts, the encoder on a fixed text.
#include <cstddef>
#include <cstdint>
#include <string>

#include "anagram/core/error.h"
#include "text/sentencepiece_model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto model = anagram::detail::SentencePieceModel::parse(
        std::string(reinterpret_cast<const char*>(data), size), "fuzz");
    (void)model.encode_pieces("a photo of a dog, caf\xc3\xa9 <extra_id_0>");
  } catch (const anagram::Error&) {
  }
  return 0;
}
