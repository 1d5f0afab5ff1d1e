// src/text/clip_text_cleaning.h (private): the text cleaning CLIP's SimpleTokenizer does before
// BPE, whitespace_clean(basic_clean(text)).lower(), as GLIDE's simple_tokenizer.py has it:
// ftfy.fix_text, html.unescape twice, strip, whitespace runs -> one space, strip, str.lower().
// It mirrors Python (ftfy 6.3, html.unescape, Python 3.11's str) so that the C++ tokenizer gives
// GLIDE's ids; ftfy is re-implemented only in part (include/anagram/text/clip_tokenizer.h says
// what is covered). Kept apart from the BPE in clip_tokenizer.cpp, which is its one user.
#pragma once

#include <string>

namespace anagram::detail {

// whitespace_clean(basic_clean(text)).lower(), on code points.
std::u32string clean_clip_text(const std::u32string& text);

}  // namespace anagram::detail
