// src/t5_tokenizer.cpp: transformers' T5Tokenizer (legacy, slow) on top of the SentencePiece
// model of src/sentencepiece_model.h: special tokens written in the text, eos, truncation and
// padding; diffusers IF's prompt preprocessing.
#include "anagram/text/t5_tokenizer.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "anagram/core/error.h"
#include "text/sentencepiece_model.h"
#include "text/unicode_text.h"

namespace anagram {

// The public header's opaque model: the SentencePiece model.
struct T5Tokenizer::Model : detail::SentencePieceModel {
  explicit Model(detail::SentencePieceModel model) : SentencePieceModel(std::move(model)) {}
};

namespace {

using detail::decode_utf8;
using detail::encode_utf8;
using detail::py_lower;
using detail::py_lstrip;
using detail::py_rstrip;
using detail::py_strip;

// ---- special tokens written in the text ----

// What transformers' T5Tokenizer registers as added tokens, with their AddedToken flags:
// </s>, <pad>, <unk> keep their whitespace; <extra_id_N> has lstrip, rstrip and single_word.
struct Special {
  int64_t id = -1;
  bool extra_id = false;
};

constexpr int kExtraIds = 100;

// Length of the special token starting at text[pos], or 0.
size_t special_at(const std::string& text, size_t pos) {
  if (text[pos] != '<') return 0;
  for (const char* literal : {"</s>", "<pad>", "<unk>"}) {
    if (text.compare(pos, std::char_traits<char>::length(literal), literal) == 0) {
      return std::char_traits<char>::length(literal);
    }
  }
  static const std::string kPrefix = "<extra_id_";
  if (text.compare(pos, kPrefix.size(), kPrefix) != 0) return 0;
  size_t end = pos + kPrefix.size();
  size_t digits = 0;
  int value = 0;
  while (end < text.size() && text[end] >= '0' && text[end] <= '9' && digits < 3) {
    value = value * 10 + (text[end] - '0');
    ++end, ++digits;
  }
  const bool canonical = digits == 1 || (digits == 2 && text[pos + kPrefix.size()] != '0');
  if (!canonical || value >= kExtraIds || end >= text.size() || text[end] != '>') return 0;
  return end + 1 - pos;
}

// Ref: transformers tokenization_utils.py Trie.split: the text cut around every added token
// (no token here is a prefix of another, so the first match at each '<' is the only one).
std::vector<std::string> split_on_specials(const std::string& text) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t pos = 0; pos < text.size();) {
    const size_t length = special_at(text, pos);
    if (length == 0) {
      ++pos;
      continue;
    }
    if (pos > start) parts.push_back(text.substr(start, pos - start));
    parts.push_back(text.substr(pos, length));
    pos += length;
    start = pos;
  }
  if (start < text.size()) parts.push_back(text.substr(start));
  return parts;
}

// Python's str.lstrip() / str.rstrip() on UTF-8 text.
std::string lstrip(const std::string& text) { return encode_utf8(py_lstrip(decode_utf8(text))); }
std::string rstrip(const std::string& text) { return encode_utf8(py_rstrip(decode_utf8(text))); }

[[noreturn]] void bundle_error(const std::string& path, const std::string& what) {
  throw Error(ErrorKind::kBundle, "tokenizer '" + path + "': " + what);
}

}  // namespace

T5Tokenizer T5Tokenizer::load(const std::string& spiece_path, int max_length, int64_t pad_id,
                              int64_t eos_id) {
  T5Tokenizer tokenizer;
  tokenizer.model_ = std::make_shared<const Model>(detail::SentencePieceModel::read(spiece_path));
  const Model& model = *tokenizer.model_;
  const int64_t size = static_cast<int64_t>(model.pieces.size());
  // (transformers cannot truncate to max_length 1: it keeps the pieces and logs an error.)
  if (max_length < 2) bundle_error(spiece_path, "max_length must be at least 2");
  if (pad_id < 0 || pad_id >= size || eos_id < 0 || eos_id >= size) {
    bundle_error(spiece_path, "pad_id " + std::to_string(pad_id) + " or eos_id " +
                                  std::to_string(eos_id) + " outside the vocabulary of " +
                                  std::to_string(size) + " pieces");
  }
  // transformers maps "</s>" and "<pad>" in text to these pieces' ids: they must agree.
  if (model.piece_to_id("</s>") != eos_id || model.piece_to_id("<pad>") != pad_id) {
    bundle_error(spiece_path, "the pieces '</s>' and '<pad>' have ids " +
                                  std::to_string(model.piece_to_id("</s>")) + " and " +
                                  std::to_string(model.piece_to_id("<pad>")) +
                                  ", expected eos_id " + std::to_string(eos_id) + " and pad_id " +
                                  std::to_string(pad_id));
  }
  tokenizer.max_length_ = max_length;
  tokenizer.pad_id_ = pad_id;
  tokenizer.eos_id_ = eos_id;
  tokenizer.unk_id_ = model.piece_to_id("<unk>");
  tokenizer.vocab_size_ = size;
  return tokenizer;
}

// Ref: transformers tokenization_utils.py PreTrainedTokenizer.tokenize (added-token handling)
// and T5Tokenizer._tokenize / _convert_token_to_id (legacy: plain SentencePiece pieces).
std::vector<int64_t> T5Tokenizer::tokenize(const std::string& text) const {
  decode_utf8(text);  // validates
  std::vector<std::string> parts = split_on_specials(text);
  const auto special_of = [&](const std::string& part) -> Special {
    if (part.empty() || special_at(part, 0) != part.size()) return {};
    if (part == "</s>") return {eos_id_, false};
    if (part == "<pad>") return {pad_id_, false};
    if (part == "<unk>") return {unk_id_, false};
    const int n = std::stoi(part.substr(10, part.size() - 11));
    return {vocab_size_ - 1 + kExtraIds - n, true};
  };
  // <extra_id_N> eats the whitespace around it; if a neighbour does not end (left) or start
  // (right) with a space, the token is glued to it and later tokenized as text. The checks use
  // the neighbours as they were before stripping, as transformers does.
  for (size_t i = 0; i < parts.size(); ++i) {
    if (!special_of(parts[i]).extra_id) continue;
    const std::string token = parts[i];
    const std::string left = i > 0 ? parts[i - 1] : std::string();
    const std::string right = i + 1 < parts.size() ? parts[i + 1] : std::string();
    if (!right.empty()) parts[i + 1] = lstrip(right);
    if (!left.empty()) parts[i - 1] = rstrip(left);
    if (!left.empty() && left.back() != ' ') {
      parts[i - 1] += token;
      parts[i].clear();
    } else if (!right.empty() && right.front() != ' ') {
      parts[i + 1] = token + parts[i + 1];
      parts[i].clear();
    }
  }
  std::vector<int64_t> ids;
  for (const std::string& part : parts) {
    if (part.empty()) continue;
    const Special special = special_of(part);
    if (special.id >= 0) {
      ids.push_back(special.id);
      continue;
    }
    for (const std::string& piece : model_->encode_pieces(part)) {
      ids.push_back(model_->piece_to_id(piece));
    }
  }
  return ids;
}

std::vector<int64_t> T5Tokenizer::encode_plain(const std::string& text) const {
  return tokenize(text);
}

// Ref: transformers tokenization_utils_base.py prepare_for_model (truncation "longest_first" to
// max_length - 1 pieces, as one eos is counted in), T5Tokenizer._add_eos_if_not_present, and
// padding "max_length" on the right.
T5Tokenizer::Encoding T5Tokenizer::encode(const std::string& text) const {
  Encoding encoding;
  encoding.ids = tokenize(text);
  const size_t room = static_cast<size_t>(max_length_ - 1);
  if (encoding.ids.size() > room) {
    encoding.ids.resize(room);
    encoding.truncated = true;
  }
  if (encoding.ids.empty() || encoding.ids.back() != eos_id_) encoding.ids.push_back(eos_id_);
  encoding.attention_mask.assign(encoding.ids.size(), 1);
  encoding.ids.resize(max_length_, pad_id_);
  encoding.attention_mask.resize(max_length_, 0);
  return encoding;
}

// Ref: diffusers pipelines/deepfloyd_if/pipeline_if.py _text_preprocessing (clean_caption=False):
// text.lower().strip().
std::string T5Tokenizer::preprocess(const std::string& text) {
  return encode_utf8(py_strip(py_lower(decode_utf8(text))));
}

}  // namespace anagram
