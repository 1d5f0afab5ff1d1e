// src/text/clip_tokenizer_tables.h (private): the row types of the generated tables in
// clip_tokenizer_tables.inc, which clip_tokenizer.cpp and clip_text_cleaning.cpp both include.
#pragma once

namespace anagram::detail {

struct Composition {  // NFC: base + mark -> composed; mark 0: a singleton base -> composed
  char32_t base, mark, composed;
};
struct Entity {  // an HTML entity; no_semicolon: Python's html.unescape accepts "&name" too
  const char* name;
  char32_t value;
  int no_semicolon;
  char32_t ftfy_upper;  // ftfy decodes "&NAME;" (capitals) to this; 0: it does not
};
struct CharMap {
  char32_t from, to;
};

}  // namespace anagram::detail
