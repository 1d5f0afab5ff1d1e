// src/sentencepiece_model.h (private): a SentencePiece unigram model (T5's spiece.model), read
// and run without libsentencepiece.
//
// Debian's libsentencepiece exports a bundled protobuf 3.14 whose symbols clash with LibTorch's
// libprotobuf 3.21 (a process loading both crashes at start-up), so spiece.model is parsed here
// and encoded with the same normalisation and Viterbi search as SentencePiece 0.1.99 (the
// version transformers runs in Python).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace anagram::detail {

enum class PieceType {
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6
};

struct SentencePieceModel {
  struct Piece {
    std::string text;
    float score = 0;
    PieceType type = PieceType::kNormal;
  };
  std::vector<Piece> pieces;
  std::unordered_map<std::string, int> ids;  // every piece -> its id
  size_t max_piece_bytes = 0;
  int unk_id = -1;
  float min_score = 0;
  float max_score = 0;
  bool byte_fallback = false;
  bool treat_whitespace_as_suffix = false;
  bool add_dummy_prefix = true;
  bool remove_extra_whitespaces = true;
  bool escape_whitespaces = true;
  std::vector<uint32_t> charsmap_units;  // darts-clone double array of the normaliser
  std::string charsmap_strings;          // NUL-terminated replacement strings
  std::vector<std::string> user_defined;

  int piece_to_id(const std::string& piece) const {
    const auto it = ids.find(piece);
    return it == ids.end() ? unk_id : it->second;
  }
  bool in_lattice(int id) const {  // NORMAL, USER_DEFINED and UNUSED pieces are matched
    const PieceType t = pieces[id].type;
    return t == PieceType::kNormal || t == PieceType::kUserDefined || t == PieceType::kUnused;
  }

  // Reads spiece.model: Error(kBundle) ("tokenizer '<path>': ...") when the file is missing or
  // unreadable, not a SentencePiece model, not unigram, or inconsistent.
  static SentencePieceModel read(const std::string& path);
  // The same from the file's bytes; path only names it in errors.
  static SentencePieceModel parse(const std::string& bytes, const std::string& path);

  // Normalizer::NormalizePrefix: the normalised form of the text's first character(s) and the
  // number of bytes it replaces.
  std::pair<std::string, size_t> normalize_prefix(const char* data, size_t size) const;
  // Normalizer::Normalize: the charsmap rules, then the whitespace options (extra whitespace
  // removed, dummy prefix, spaces as U+2581).
  std::string normalize(const std::string& input) const;
  // SentencePieceProcessor::Encode's pieces: the best (Viterbi) segmentation of normalize(text);
  // runs of unknown pieces merged, or <0xXX> byte pieces with byte_fallback.
  std::vector<std::string> encode_pieces(const std::string& text) const;
};

}  // namespace anagram::detail
