// anagram/text/t5_tokenizer.h: T5's SentencePiece tokenizer with the conventions of transformers'
// (slow) T5Tokenizer, legacy mode, as of transformers 4.35.2, which the diffusers IF pipeline uses.
//
// Basic usage:
//   anagram::T5Tokenizer tok = anagram::T5Tokenizer::load("models/tiny-if/spiece.model");
//   auto enc = tok.encode(anagram::T5Tokenizer::preprocess("A Photo of a Dog "));
//   // enc.ids: 77 ids = pieces (at most 76), </s>, <pad>...; enc.attention_mask: 1 then 0
//
// Same ids as tokenizer(text, padding="max_length", max_length=77, truncation=True,
// add_special_tokens=True), including its handling of special tokens written in the text:
//   - "</s>", "<pad>", "<unk>" and "<extra_id_0>".."<extra_id_99>" become their ids
//     (extra_id_i = vocab_size - 1 + 100 - i, as transformers numbers them);
//   - "<extra_id_N>" eats the whitespace around it, and when it touches a neighbouring word
//     ("a<extra_id_0>b") it is glued to that word and tokenized as plain text, as transformers
//     does (its single_word rule);
//   - no </s> is appended when the (truncated) pieces already end with one.
// Text must be valid UTF-8; otherwise Error(kInvalidArgument).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace anagram {

class T5Tokenizer {
 public:
  struct Model;  // opaque: the parsed SentencePiece model, defined in src/t5_tokenizer.cpp

  struct Encoding {
    std::vector<int64_t> ids;             // max_length ids: pieces, eos, then pad
    std::vector<int64_t> attention_mask;  // max_length values: 1 for pieces and eos, 0 for pad
    bool truncated = false;               // whether pieces were dropped to fit max_length
  };

  // Loads a SentencePiece model (spiece.model; unigram models, as T5's). src/t5_tokenizer.cpp
  // reads and runs it itself, matching SentencePiece 0.1.99 (libsentencepiece is not used: its
  // bundled protobuf clashes with LibTorch's). Throws Error(kBundle) when the file is missing or
  // not a SentencePiece model, when max_length < 2, or when pad_id / eos_id are out of range or
  // differ from the ids of the pieces "<pad>" / "</s>".
  static T5Tokenizer load(const std::string& spiece_path, int max_length = 77, int64_t pad_id = 0,
                          int64_t eos_id = 1);

  // tokenizer(text, padding="max_length", max_length, truncation=True, add_special_tokens=True).
  // Does not preprocess: call preprocess() first for IF prompts.
  Encoding encode(const std::string& text) const;
  // tokenizer(text, add_special_tokens=False).input_ids: the pieces only, no eos, no padding,
  // no truncation (used to find a word's tokens inside a prompt).
  std::vector<int64_t> encode_plain(const std::string& text) const;

  // The diffusers IF pipeline's _text_preprocessing(text, clean_caption=False), i.e. Python's
  // text.lower().strip(): full Unicode simple lower-casing (Python 3.11 / Unicode 14 tables),
  // "İ" -> "i̇", final-sigma "Σ" -> "ς" (Unicode's Cased / Case_Ignorable properties, which that
  // rule needs, are exact for Latin, Greek, Cyrillic, combining marks and punctuation, and
  // approximated for rarer scripts), then Python's whitespace stripped at both ends.
  static std::string preprocess(const std::string& text);

  int max_length() const { return max_length_; }
  int64_t pad_id() const { return pad_id_; }
  int64_t eos_id() const { return eos_id_; }
  int64_t unk_id() const { return unk_id_; }
  int64_t vocab_size() const { return vocab_size_; }  // SentencePiece pieces, without extra_ids

 private:
  T5Tokenizer() = default;
  std::vector<int64_t> tokenize(const std::string& text) const;

  std::shared_ptr<const Model> model_;
  int max_length_ = 77;
  int64_t pad_id_ = 0;
  int64_t eos_id_ = 1;
  int64_t unk_id_ = 2;
  int64_t vocab_size_ = 0;
};

}  // namespace anagram
