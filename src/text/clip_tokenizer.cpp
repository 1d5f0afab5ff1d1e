// src/text/clip_tokenizer.cpp: CLIP's byte-level BPE tokenizer, as GLIDE's noise-aware CLIP uses
// it.
//
// Ref:
// https://github.com/openai/glide-text2im/blob/main/glide_text2im/tokenizer/simple_tokenizer.py
// Ref: https://github.com/openai/glide-text2im/blob/main/glide_text2im/clip/model_creation.py
// The text cleaning before BPE (ftfy, html.unescape, whitespace, lower-casing) is
// src/text/clip_text_cleaning.cpp's; see include/anagram/text/clip_tokenizer.h for what is and
// is not covered.
#include "anagram/text/clip_tokenizer.h"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstring>
#include <fstream>
#include <mutex>
#include <unordered_map>

#include "anagram/core/error.h"
#include "text/clip_text_cleaning.h"
#include "text/clip_tokenizer_tables.h"
#include "text/unicode_text.h"

namespace anagram {
namespace {

using detail::CharMap;
using detail::clean_clip_text;
using detail::Composition;
using detail::decode_utf8;
using detail::DeltaRun;
using detail::encode_utf8;
using detail::Entity;
using detail::in_ranges;
using detail::is_white_space;
using Range = detail::CodeRange;

// Of the generated tables only the letter and number ranges are used here; the rest are the
// text cleaning's (clip_text_cleaning.cpp includes the same file).
#include "text/clip_tokenizer_tables.inc"

constexpr int kNumMerges = 49152 - 256 - 2;  // SimpleTokenizer: merges[1 : 49152 - 256 - 2 + 1]
constexpr size_t kMaxCacheWords = 1 << 16;

// ---- Unicode helpers ---------------------------------------------------------------------------

bool is_letter(char32_t c) { return in_ranges(kLetterRanges, c); }  // \p{L}
bool is_number(char32_t c) { return in_ranges(kNumberRanges, c); }  // \p{N}

// ---- Pre-tokenisation ---------------------------------------------------------------------------

// Whether s[pos..] starts with the lower-case ASCII text, matched as the regex module does with
// re.IGNORECASE (after lower-casing, only U+017F LATIN SMALL LETTER LONG S still counts: as s).
bool starts_with(const std::u32string& s, size_t pos, const char* ascii) {
  for (size_t k = 0; ascii[k] != 0; ++k) {
    if (pos + k >= s.size()) return false;
    const char32_t c = s[pos + k];
    const char32_t want = static_cast<char32_t>(ascii[k]);
    const bool upper = want >= 'a' && want <= 'z' && c == want - 0x20;
    if (c != want && !upper && !(want == 's' && c == 0x17F)) return false;
  }
  return true;
}

// re.findall(pat, text) with CLIP's pattern, compiled with re.IGNORECASE:
//   <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
// as UTF-8 words. With IGNORECASE the regex module matches U+0345 COMBINING GREEK YPOGEGRAMMENI
// (which folds to a letter) with neither the letter class nor its negation: it is dropped.
std::vector<std::string> split_words(const std::u32string& s) {
  static const char* const kFixed[] = {
      "<|startoftext|>", "<|endoftext|>", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};
  std::vector<std::string> words;
  size_t i = 0;
  while (i < s.size()) {
    size_t end = i;
    for (const char* fixed : kFixed) {
      if (starts_with(s, i, fixed)) {
        end = i + std::strlen(fixed);
        break;
      }
    }
    if (end == i) {
      if (is_letter(s[i])) {
        while (end < s.size() && is_letter(s[end])) ++end;
      } else if (is_number(s[i])) {
        end = i + 1;
      } else if (!is_white_space(s[i]) && s[i] != 0x345) {
        while (end < s.size() && !is_white_space(s[end]) && !is_letter(s[end]) &&
               !is_number(s[end]) && s[end] != 0x345) {
          ++end;
        }
      } else {
        ++i;
        continue;
      }
    }
    words.push_back(encode_utf8(s.substr(i, end - i)));
    i = end;
  }
  return words;
}

// ---- Vocabulary file ---------------------------------------------------------------------------

std::string read_gzip(const std::string& path) {
  std::ifstream probe(path, std::ios::binary);
  if (!probe) throw Error(ErrorKind::kBundle, "cannot open CLIP BPE vocabulary '" + path + "'");
  char magic[2] = {};
  if (!probe.read(magic, 2) || magic[0] != '\x1f' || magic[1] != '\x8b') {
    throw Error(ErrorKind::kBundle, "CLIP BPE vocabulary '" + path + "' is not gzip-compressed");
  }
  gzFile file = gzopen(path.c_str(), "rb");
  if (file == nullptr) {
    throw Error(ErrorKind::kBundle, "cannot open CLIP BPE vocabulary '" + path + "'");
  }
  std::string data;
  char buffer[1 << 16];
  int got = 0;
  // CLIP's vocabulary is 1.7 MB unpacked; a small file that inflates to gigabytes is refused.
  constexpr size_t kMaxVocabularyBytes = 32 << 20;
  while ((got = gzread(file, buffer, sizeof(buffer))) > 0) {
    data.append(buffer, got);
    if (data.size() > kMaxVocabularyBytes) {
      gzclose(file);
      throw Error(ErrorKind::kBundle, "CLIP BPE vocabulary '" + path + "' unpacks to more than " +
                                          std::to_string(kMaxVocabularyBytes >> 20) +
                                          " MiB; it is not CLIP's vocabulary");
    }
  }
  int status = Z_OK;
  const char* message = gzerror(file, &status);
  const std::string what = got < 0 || status != Z_OK ? std::string(message) : std::string();
  gzclose(file);
  if (!what.empty()) {
    throw Error(ErrorKind::kBundle, "CLIP BPE vocabulary '" + path + "' is corrupt: " + what);
  }
  return data;
}

// bytes_to_unicode(): printable bytes map to themselves, the others to U+0100 onwards. The
// order is the vocabulary's: printable bytes first, then the rest.
std::vector<std::pair<int, char32_t>> bytes_to_unicode() {
  std::vector<std::pair<int, char32_t>> table;
  std::array<bool, 256> printable{};
  for (int b = 0; b < 256; ++b) {
    printable[b] = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    if (printable[b]) table.emplace_back(b, static_cast<char32_t>(b));
  }
  char32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    if (!printable[b]) table.emplace_back(b, next++);
  }
  return table;
}

}  // namespace

struct ClipTokenizer::Vocab {
  std::array<std::string, 256> byte_symbols;  // byte -> its symbol, UTF-8
  std::unordered_map<std::string, int64_t> encoder;
  std::unordered_map<std::string, int> ranks;  // "first second" -> merge rank
  std::mutex cache_mutex;
  std::unordered_map<std::string, std::vector<int64_t>> cache;  // word (UTF-8) -> ids

  int64_t id(const std::string& symbol) const {
    auto it = encoder.find(symbol);
    if (it == encoder.end()) {
      throw Error(ErrorKind::kBundle, "CLIP BPE vocabulary has no symbol '" + symbol + "'");
    }
    return it->second;
  }

  // SimpleTokenizer.bpe: merge the lowest-ranked adjacent pair everywhere until none is left.
  std::vector<int64_t> bpe(const std::string& word_utf8) const {
    std::vector<std::string> word;
    for (unsigned char b : word_utf8) word.push_back(byte_symbols[b]);
    word.back() += "</w>";
    while (word.size() > 1) {
      int best = INT_MAX;
      size_t at = 0;
      for (size_t i = 0; i + 1 < word.size(); ++i) {
        auto it = ranks.find(word[i] + ' ' + word[i + 1]);
        if (it != ranks.end() && it->second < best) best = it->second, at = i;
      }
      if (best == INT_MAX) break;
      const std::string first = word[at], second = word[at + 1];
      std::vector<std::string> merged;
      for (size_t i = 0; i < word.size(); ++i) {
        if (i + 1 < word.size() && word[i] == first && word[i + 1] == second) {
          merged.push_back(first + second);
          ++i;
        } else {
          merged.push_back(word[i]);
        }
      }
      word.swap(merged);
    }
    std::vector<int64_t> ids;
    for (const std::string& symbol : word) ids.push_back(id(symbol));
    return ids;
  }

  std::vector<int64_t> word_ids(const std::string& word_utf8) {
    {
      std::lock_guard<std::mutex> lock(cache_mutex);
      auto it = cache.find(word_utf8);
      if (it != cache.end()) return it->second;
    }
    std::vector<int64_t> ids = bpe(word_utf8);
    std::lock_guard<std::mutex> lock(cache_mutex);
    if (cache.size() >= kMaxCacheWords) cache.clear();
    cache.emplace(word_utf8, ids);
    return ids;
  }
};

ClipTokenizer ClipTokenizer::load(const std::string& bpe_vocab_gz_path, int context_length) {
  if (context_length < 2) {
    throw Error(ErrorKind::kInvalidArgument,
                "CLIP context length must be at least 2, got " + std::to_string(context_length));
  }
  return from_merges(read_gzip(bpe_vocab_gz_path), bpe_vocab_gz_path, context_length);
}

ClipTokenizer ClipTokenizer::from_merges(const std::string& data,
                                         const std::string& bpe_vocab_gz_path, int context_length) {
  if (context_length < 2) {
    throw Error(ErrorKind::kInvalidArgument,
                "CLIP context length must be at least 2, got " + std::to_string(context_length));
  }
  try {
    decode_utf8(data);
  } catch (const Error&) {
    throw Error(ErrorKind::kBundle,
                "CLIP BPE vocabulary '" + bpe_vocab_gz_path + "' is not valid UTF-8");
  }
  auto vocab = std::make_shared<Vocab>();
  std::vector<std::string> symbols;  // the vocabulary in id order
  for (const auto& [byte, symbol] : bytes_to_unicode()) {
    detail::append_utf8(vocab->byte_symbols[byte], symbol);
    symbols.push_back(vocab->byte_symbols[byte]);
  }
  for (int b = 0; b < 256; ++b) symbols.push_back(symbols[b] + "</w>");
  // Line 0 is a version header; lines 1..kNumMerges are "first second".
  size_t pos = data.find('\n');
  for (int rank = 0; rank < kNumMerges; ++rank) {
    const size_t start = pos == std::string::npos ? pos : pos + 1;
    pos = start == std::string::npos ? start : data.find('\n', start);
    const std::string line = start == std::string::npos ? "" : data.substr(start, pos - start);
    const size_t space = line.find(' ');
    if (space == 0 || space == std::string::npos || space + 1 == line.size() ||
        line.find(' ', space + 1) != std::string::npos) {
      throw Error(ErrorKind::kBundle, "CLIP BPE vocabulary '" + bpe_vocab_gz_path +
                                          "' has a bad or missing merge on line " +
                                          std::to_string(rank + 2) + " (need " +
                                          std::to_string(kNumMerges) + " merges)");
    }
    vocab->ranks[line] = rank;
    symbols.push_back(line.substr(0, space) + line.substr(space + 1));
  }
  symbols.push_back("<|startoftext|>");
  symbols.push_back("<|endoftext|>");
  for (size_t i = 0; i < symbols.size(); ++i) vocab->encoder[symbols[i]] = static_cast<int64_t>(i);

  ClipTokenizer tok;
  tok.start_token_ = vocab->encoder.at("<|startoftext|>");
  tok.end_token_ = vocab->encoder.at("<|endoftext|>");
  vocab->cache["<|startoftext|>"] = {tok.start_token_};
  vocab->cache["<|endoftext|>"] = {tok.end_token_};
  tok.vocab_ = std::move(vocab);
  tok.context_length_ = context_length;
  return tok;
}

std::string ClipTokenizer::clean(const std::string& text) {
  return encode_utf8(clean_clip_text(decode_utf8(text)));
}

std::vector<int64_t> ClipTokenizer::encode_plain(const std::string& text, size_t max_tokens) const {
  std::vector<int64_t> ids;
  for (const std::string& word : split_words(clean_clip_text(decode_utf8(text)))) {
    // Words are tokenised independently: once enough ids are there, the rest cannot matter.
    if (ids.size() >= max_tokens) break;
    const std::vector<int64_t> word_ids = vocab_->word_ids(word);
    ids.insert(ids.end(), word_ids.begin(), word_ids.end());
  }
  return ids;
}

ClipTokenizer::Encoding ClipTokenizer::encode(const std::string& text) const {
  // padded_tokens_and_len: [start] + tokens[:text_ctx - 2] + [end], then zeros.
  const std::vector<int64_t> plain = encode_plain(text, static_cast<size_t>(context_length_ - 2));
  const size_t kept = std::min(plain.size(), static_cast<size_t>(context_length_ - 2));
  Encoding enc;
  enc.tokens.reserve(context_length_);
  enc.tokens.push_back(start_token_);
  enc.tokens.insert(enc.tokens.end(), plain.begin(), plain.begin() + kept);
  enc.tokens.push_back(end_token_);
  enc.length = static_cast<int64_t>(enc.tokens.size());
  enc.tokens.resize(context_length_, pad_token());
  return enc;
}

}  // namespace anagram
