// src/unicode_text.h (private): the Unicode text handling the tokenizers share, reproducing what
// Python 3.11 (Unicode 14.0) does with str, so that C++ and Python give the same text.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace anagram::detail {

// Code points first..last. Tables of them are sorted by first and disjoint.
struct CodeRange {
  char32_t first, last;
};

// Code points c in first..last with (c - first) % stride == 0 map to c + delta. Tables of them
// are sorted by first and disjoint.
struct DeltaRun {
  char32_t first, last;
  int stride, delta;
};

// Whether c lies in one of the ranges [begin, end).
bool in_ranges(const CodeRange* begin, const CodeRange* end, char32_t c);
template <size_t N>
bool in_ranges(const CodeRange (&table)[N], char32_t c) {
  return in_ranges(table, table + N, c);
}

// The run of [begin, end) that maps c, or nullptr.
const DeltaRun* find_run(const DeltaRun* begin, const DeltaRun* end, char32_t c);
// c mapped by its run of [begin, end), or c itself.
char32_t map_runs(const DeltaRun* begin, const DeltaRun* end, char32_t c);
template <size_t N>
char32_t map_runs(const DeltaRun (&table)[N], char32_t c) {
  return map_runs(table, table + N, c);
}

// bytes.decode("utf-8") (strict): code points of UTF-8 text. Throws Error(kInvalidArgument)
// ("text is not valid UTF-8 ...", with the byte offset) for what Python's str could not hold:
// stray, truncated or overlong sequences, surrogates, code points above U+10FFFF.
std::u32string decode_utf8(std::string_view text);
// str.encode("utf-8") of code points (not checked).
void append_utf8(std::string& out, char32_t c);
std::string encode_utf8(std::u32string_view text);

// str.isspace() for one character: Unicode White_Space plus U+001C..U+001F.
bool is_py_space(char32_t c);
// Unicode White_Space: the regex module's \s (Python's re also matches U+001C..U+001F).
bool is_white_space(char32_t c);

// str.strip(), str.lstrip() and str.rstrip() without arguments (is_py_space at the ends).
std::u32string py_strip(std::u32string_view text);
std::u32string py_lstrip(std::u32string_view text);
std::u32string py_rstrip(std::u32string_view text);

// str.lower(), in full: the simple lower-case mapping of every code point, U+0130 -> "i\u0307"
// (SpecialCasing.txt) and U+03A3 -> final sigma U+03C2 where CPython's handle_capital_sigma says
// so. The mapping is exact everywhere; the Cased / Case_Ignorable properties that final sigma
// needs are exact for Latin, Greek, Cyrillic, Armenian, Hebrew, Arabic, Devanagari, Thai,
// Georgian, punctuation and symbols, kana, CJK, Hangul, width forms and the other blocks listed
// in unicode_text.cpp, approximate elsewhere (e.g. other Indic scripts' marks count as neither).
std::u32string py_lower(std::u32string_view text);

}  // namespace anagram::detail
