// src/sentencepiece_model.cpp: see sentencepiece_model.h.
#include "text/sentencepiece_model.h"

#include <algorithm>
#include <cfloat>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string_view>

#include "anagram/core/error.h"

namespace anagram::detail {
namespace {

// Ref: sentencepiece src/util.h OneCharLen: the length of a UTF-8 sequence from its lead byte.
size_t one_char_len(char lead) {
  const auto b = static_cast<uint8_t>(lead);
  return b < 0xC0 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
}

// A minimal protobuf wire-format reader: enough for ModelProto.
class ProtoReader {
 public:
  ProtoReader(const char* data, size_t size, const std::string& path)
      : p_(reinterpret_cast<const uint8_t*>(data)), end_(p_ + size), path_(path) {}
  bool done() const { return p_ >= end_; }
  uint64_t varint() {
    uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ >= end_) fail();
      const uint8_t byte = *p_++;
      value |= static_cast<uint64_t>(byte & 0x7F) << shift;
      if ((byte & 0x80) == 0) return value;
    }
    fail();
  }
  // Reads a field key; returns the field number and sets the wire type.
  uint32_t key(int& wire_type) {
    const uint64_t k = varint();
    wire_type = static_cast<int>(k & 7);
    return static_cast<uint32_t>(k >> 3);
  }
  std::string bytes() {
    const uint64_t n = varint();
    if (n > static_cast<uint64_t>(end_ - p_)) fail();
    std::string out(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    return out;
  }
  float fixed32_float() {
    if (end_ - p_ < 4) fail();
    uint32_t bits =
        uint32_t(p_[0]) | uint32_t(p_[1]) << 8 | uint32_t(p_[2]) << 16 | uint32_t(p_[3]) << 24;
    p_ += 4;
    float value;
    std::memcpy(&value, &bits, sizeof value);
    return value;
  }
  void skip(int wire_type) {
    switch (wire_type) {
      case 0:
        varint();
        return;
      case 1:
        advance(8);
        return;
      case 2:
        bytes();
        return;
      case 5:
        advance(4);
        return;
      default:
        fail();
    }
  }

 private:
  void advance(size_t n) {
    if (static_cast<size_t>(end_ - p_) < n) fail();
    p_ += n;
  }
  [[noreturn]] void fail() const {
    throw Error(ErrorKind::kBundle,
                "tokenizer '" + path_ + "': not a SentencePiece model (bad protobuf)");
  }
  const uint8_t* p_;
  const uint8_t* end_;
  const std::string& path_;
};

// Ref: sentencepiece src/normalizer.cc DecodePrecompiledCharsMap: <uint32 trie
// size><trie><strings>.
void read_charsmap(const std::string& blob, SentencePieceModel& model, const std::string& path) {
  if (blob.empty()) return;
  uint32_t trie_size = 0;
  if (blob.size() > 4) {
    trie_size = uint32_t(uint8_t(blob[0])) | uint32_t(uint8_t(blob[1])) << 8 |
                uint32_t(uint8_t(blob[2])) << 16 | uint32_t(uint8_t(blob[3])) << 24;
  }
  if (blob.size() <= 4 || trie_size >= blob.size() - 4 || trie_size % 4 != 0 || trie_size == 0) {
    throw Error(ErrorKind::kBundle, "tokenizer '" + path + "': broken precompiled_charsmap");
  }
  model.charsmap_units.resize(trie_size / 4);
  std::memcpy(model.charsmap_units.data(), blob.data() + 4, trie_size);  // little-endian host
  model.charsmap_strings = blob.substr(4 + trie_size);
  model.charsmap_strings.push_back('\0');  // guard: every string ends inside the buffer
}

// Ref: darts-clone DoubleArrayImpl::commonPrefixSearch (as used by SentencePiece's normaliser):
// calls `found(length, value)` for every key that is a prefix of data[0, size).
template <typename F>
void common_prefix_search(const std::vector<uint32_t>& units, const char* data, size_t size,
                          F&& found) {
  const auto offset = [](uint32_t unit) { return (unit >> 10) << ((unit & (1U << 9)) >> 6); };
  const auto label = [](uint32_t unit) { return unit & ((1U << 31) | 0xFF); };
  const auto has_leaf = [](uint32_t unit) { return ((unit >> 8) & 1) == 1; };
  if (units.empty()) return;
  size_t node = offset(units[0]);
  for (size_t i = 0; i < size; ++i) {
    const uint32_t byte = static_cast<uint8_t>(data[i]);
    node ^= byte;
    if (node >= units.size() || label(units[node]) != byte) return;
    const uint32_t unit = units[node];
    node ^= offset(unit);
    if (node >= units.size()) return;
    if (has_leaf(unit)) found(i + 1, units[node] & ((1U << 31) - 1));
  }
}

}  // namespace

SentencePieceModel SentencePieceModel::read(const std::string& path) {
  const auto bad = [&](const std::string& what) {
    throw Error(ErrorKind::kBundle, "tokenizer '" + path + "': " + what);
  };
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) bad("SentencePiece model file does not exist");
  std::ifstream in(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (!in) bad("cannot read the SentencePiece model");
  return parse(bytes.str(), path);
}

namespace {

// ModelProto.pieces[i]: SentencePiece {piece = 1, score = 2, type = 3}.
SentencePieceModel::Piece read_piece(ProtoReader& sub) {
  SentencePieceModel::Piece piece;
  int wire = 0;
  while (!sub.done()) {
    const uint32_t f = sub.key(wire);
    if (f == 1 && wire == 2) {
      piece.text = sub.bytes();
    } else if (f == 2 && wire == 5) {
      piece.score = sub.fixed32_float();
    } else if (f == 3 && wire == 0) {
      piece.type = static_cast<PieceType>(sub.varint());
    } else {
      sub.skip(wire);
    }
  }
  return piece;
}

// ModelProto.trainer_spec: model_type = 3, treat_whitespace_as_suffix = 24, byte_fallback = 35.
int read_trainer_spec(ProtoReader& sub, SentencePieceModel& model) {
  int model_type = 1;  // UNIGRAM
  int wire = 0;
  while (!sub.done()) {
    const uint32_t f = sub.key(wire);
    if (f == 3 && wire == 0) {
      model_type = static_cast<int>(sub.varint());
    } else if (f == 24 && wire == 0) {
      model.treat_whitespace_as_suffix = sub.varint() != 0;
    } else if (f == 35 && wire == 0) {
      model.byte_fallback = sub.varint() != 0;
    } else {
      sub.skip(wire);
    }
  }
  return model_type;
}

// ModelProto.normalizer_spec: precompiled_charsmap = 2 (returned), add_dummy_prefix = 3,
// remove_extra_whitespaces = 4, escape_whitespaces = 5.
std::string read_normalizer_spec(ProtoReader& sub, SentencePieceModel& model) {
  std::string charsmap;
  int wire = 0;
  while (!sub.done()) {
    const uint32_t f = sub.key(wire);
    if (f == 2 && wire == 2) {
      charsmap = sub.bytes();
    } else if (f == 3 && wire == 0) {
      model.add_dummy_prefix = sub.varint() != 0;
    } else if (f == 4 && wire == 0) {
      model.remove_extra_whitespaces = sub.varint() != 0;
    } else if (f == 5 && wire == 0) {
      model.escape_whitespaces = sub.varint() != 0;
    } else {
      sub.skip(wire);
    }
  }
  return charsmap;
}

// Ref: sentencepiece src/model_interface.cc InitializePieces; src/unigram_model.cc Model().
void index_pieces(SentencePieceModel& model, const std::function<void(const std::string&)>& bad) {
  model.min_score = FLT_MAX;
  model.max_score = FLT_MIN;  // sic: the smallest positive float, as SentencePiece has it
  for (size_t i = 0; i < model.pieces.size(); ++i) {
    const auto& piece = model.pieces[i];
    if (piece.text.empty()) bad("empty piece " + std::to_string(i));
    if (piece.type < PieceType::kNormal || piece.type > PieceType::kByte) bad("bad piece type");
    if (!model.ids.emplace(piece.text, static_cast<int>(i)).second) {
      bad("piece '" + piece.text + "' is defined twice");
    }
    if (piece.type == PieceType::kUnknown) {
      if (model.unk_id >= 0) bad("two unknown pieces");
      model.unk_id = static_cast<int>(i);
    }
    if (piece.type == PieceType::kUserDefined) model.user_defined.push_back(piece.text);
    if (piece.type == PieceType::kNormal) {
      model.min_score = std::min(model.min_score, piece.score);
      model.max_score = std::max(model.max_score, piece.score);
    }
    if (model.in_lattice(static_cast<int>(i))) {
      model.max_piece_bytes = std::max(model.max_piece_bytes, piece.text.size());
    }
  }
  if (model.unk_id < 0) bad("no unknown piece");
}

}  // namespace

SentencePieceModel SentencePieceModel::parse(const std::string& bytes, const std::string& path) {
  SentencePieceModel model;
  int model_type = 1;  // UNIGRAM
  std::string charsmap;
  ProtoReader top(bytes.data(), bytes.size(), path);
  while (!top.done()) {  // ModelProto: pieces = 1, trainer_spec = 2, normalizer_spec = 3
    int wire = 0;
    const uint32_t field = top.key(wire);
    if (wire != 2 || (field != 1 && field != 2 && field != 3)) {
      top.skip(wire);
      continue;
    }
    const std::string message = top.bytes();
    ProtoReader sub(message.data(), message.size(), path);
    if (field == 1) {
      model.pieces.push_back(read_piece(sub));
    } else if (field == 2) {
      model_type = read_trainer_spec(sub, model);
    } else {
      charsmap = read_normalizer_spec(sub, model);
    }
  }
  const auto bad = [&](const std::string& what) {
    throw Error(ErrorKind::kBundle, "tokenizer '" + path + "': " + what);
  };
  if (model_type != 1) bad("only unigram SentencePiece models are supported");
  if (model.pieces.empty()) bad("not a SentencePiece model (no pieces)");
  read_charsmap(charsmap, model, path);
  index_pieces(model, bad);
  return model;
}

// Ref: sentencepiece src/normalizer.cc Normalizer::NormalizePrefix: a user-defined piece passes
// unchanged; else the longest rule of the charsmap; else one UTF-8 character.
// Returns the replacement and the number of input bytes it consumes.
std::pair<std::string, size_t> SentencePieceModel::normalize_prefix(const char* data,
                                                                    size_t size) const {
  size_t longest_user = 0;
  for (const std::string& symbol : user_defined) {
    if (symbol.size() <= size && symbol.size() > longest_user &&
        std::memcmp(data, symbol.data(), symbol.size()) == 0) {
      longest_user = symbol.size();
    }
  }
  if (longest_user > 0) return {std::string(data, longest_user), longest_user};
  constexpr int kMaxTrieResults = 32;  // SentencePiece keeps the first 32 matches only
  int results = 0;
  size_t longest_length = 0;
  uint32_t longest_value = 0;
  common_prefix_search(charsmap_units, data, size, [&](size_t length, uint32_t value) {
    if (results++ >= kMaxTrieResults) return;
    if (longest_length == 0 || length > longest_length) {
      longest_length = length;
      longest_value = value;
    }
  });
  if (longest_length > 0 && longest_value < charsmap_strings.size()) {
    return {std::string(charsmap_strings.c_str() + longest_value), longest_length};
  }
  // Text was validated as UTF-8 before, so this is a whole character.
  const size_t length = std::min(one_char_len(data[0]), size);
  return {std::string(data, length), length};
}

// Ref: sentencepiece src/normalizer.cc Normalizer::Normalize.
std::string SentencePieceModel::normalize(const std::string& text) const {
  static const std::string kSpace = "\xe2\x96\x81";  // U+2581, SentencePiece's space
  const std::string space = escape_whitespaces ? kSpace : std::string(" ");
  const char* data = text.data();
  size_t size = text.size();
  if (remove_extra_whitespaces) {  // drop leading characters that normalise to one space
    while (size > 0) {
      const auto prefix = normalize_prefix(data, size);
      if (prefix.first != " ") break;
      data += prefix.second;
      size -= prefix.second;
    }
  }
  std::string out;
  if (size == 0) return out;
  if (!treat_whitespace_as_suffix && add_dummy_prefix) out += space;
  bool prev_space = remove_extra_whitespaces;
  while (size > 0) {
    const auto prefix = normalize_prefix(data, size);
    std::string_view piece = prefix.first;
    while (prev_space && !piece.empty() && piece.front() == ' ') piece.remove_prefix(1);
    if (!piece.empty()) {
      for (char c : piece) {
        if (escape_whitespaces && c == ' ') {
          out += kSpace;
        } else {
          out += c;
        }
      }
      prev_space = piece.back() == ' ';
    }
    data += prefix.second;
    size -= prefix.second;
    if (!remove_extra_whitespaces) prev_space = false;
  }
  if (remove_extra_whitespaces) {
    while (out.size() >= space.size() &&
           out.compare(out.size() - space.size(), space.size(), space) == 0) {
      out.resize(out.size() - space.size());
    }
  }
  if (treat_whitespace_as_suffix && add_dummy_prefix) out += space;
  return out;
}

// Ref: sentencepiece src/unigram_model.cc Model::EncodeOptimized (Viterbi over the pieces that
// start at each character; unknown characters cost min_score - 10; the first best path found
// wins ties) and src/sentencepiece_processor.cc PopulateSentencePieceText (runs of unknown
// pieces merge into one; with byte_fallback they become byte pieces).
std::vector<std::string> SentencePieceModel::encode_pieces(const std::string& text) const {
  const std::string normalized = normalize(text);
  const size_t size = normalized.size();
  std::vector<std::string> out;
  if (size == 0) return out;
  struct Best {
    int id = -1;
    float score = 0;
    long starts_at = -1;
  };
  constexpr float kUnkPenalty = 10.0f;
  const float unk_score = min_score - kUnkPenalty;
  std::vector<Best> best(size + 1);
  for (size_t start = 0; start < size;) {
    const float score_here = best[start].score;
    const size_t char_len = std::min(one_char_len(normalized[start]), size - start);
    bool has_single = false;
    const size_t longest = std::min(max_piece_bytes, size - start);
    for (size_t length = 1; length <= longest; ++length) {
      const auto it = ids.find(normalized.substr(start, length));
      if (it == ids.end() || !in_lattice(it->second)) continue;
      if (pieces[it->second].type == PieceType::kUnused) continue;
      Best& target = best[start + length];
      const bool user = pieces[it->second].type == PieceType::kUserDefined;
      // As in SentencePiece: the score is a double (the user-defined bonus is computed in
      // double), the sum is double, the stored best score a float.
      const double score = user ? static_cast<float>(length) * max_score - 0.1
                                : static_cast<double>(pieces[it->second].score);
      const double candidate = score + score_here;
      if (target.starts_at == -1 || candidate > target.score) {
        target = {it->second, static_cast<float>(candidate), static_cast<long>(start)};
      }
      if (length == char_len) has_single = true;
    }
    if (!has_single) {
      Best& target = best[start + char_len];
      const float candidate = unk_score + score_here;
      if (target.starts_at == -1 || candidate > target.score) {
        target = {unk_id, candidate, static_cast<long>(start)};
      }
    }
    start += char_len;
  }
  std::vector<std::pair<std::string, int>> path;
  for (size_t end = size; end > 0;) {
    const Best& node = best[end];
    path.emplace_back(normalized.substr(node.starts_at, end - node.starts_at), node.id);
    end = static_cast<size_t>(node.starts_at);
  }
  std::reverse(path.begin(), path.end());
  bool prev_unk = false;
  for (const auto& [piece, id] : path) {
    const bool unk = id == unk_id;
    if (unk && byte_fallback) {
      for (unsigned char byte : piece) {
        char name[8];
        std::snprintf(name, sizeof name, "<0x%02X>", byte);
        out.emplace_back(name);
      }
    } else if (unk && prev_unk) {
      out.back() += piece;
    } else {
      out.push_back(piece);
    }
    prev_unk = unk;
  }
  return out;
}

}  // namespace anagram::detail
