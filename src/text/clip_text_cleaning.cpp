// src/text/clip_text_cleaning.cpp: the text cleaning of CLIP's SimpleTokenizer before BPE,
// whitespace_clean(basic_clean(text)).lower(). See clip_text_cleaning.h.
//
// Ref:
// https://github.com/openai/glide-text2im/blob/main/glide_text2im/tokenizer/simple_tokenizer.py
// It re-implements, in part, ftfy 6's fix_text and Python's html.unescape (str.lower() and the
// UTF-8 handling are src/text/unicode_text.h's); see include/anagram/text/clip_tokenizer.h for
// what is and is not covered.
#include "text/clip_text_cleaning.h"

#include <algorithm>
#include <cstring>

#include "text/clip_tokenizer_tables.h"
#include "text/unicode_text.h"

namespace anagram::detail {
namespace {

using Range = CodeRange;

#include "text/clip_tokenizer_tables.inc"

// ---- HTML entities -----------------------------------------------------------------------------

const Entity* find_entity(const std::u32string& name) {
  if (name.size() > 16) return nullptr;
  char ascii[17] = {};
  for (size_t i = 0; i < name.size(); ++i) {
    if (name[i] >= 0x80) return nullptr;
    ascii[i] = static_cast<char>(name[i]);
  }
  for (const Entity& e : kEntities) {
    if (std::strcmp(e.name, ascii) == 0) return &e;
  }
  return nullptr;
}

// Python's html.unescape for "&#<num>" / "&#x<hex>".
std::u32string charref(char32_t num) {
  for (const CharMap& m : kInvalidCharrefs) {
    if (m.from == num) return std::u32string(1, m.to);
  }
  if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF) return U"\uFFFD";
  if ((num >= 0x1 && num <= 0x8) || num == 0xB || (num >= 0xE && num <= 0x1F) ||
      (num >= 0x7F && num <= 0x9F) || (num >= 0xFDD0 && num <= 0xFDEF) ||
      (num & 0xFFFE) == 0xFFFE) {
    return U"";
  }
  return std::u32string(1, num);
}

int hex_value(char32_t c) {
  if (c >= '0' && c <= '9') return static_cast<int>(c - '0');
  if (c >= 'a' && c <= 'f') return static_cast<int>(c - 'a' + 10);
  if (c >= 'A' && c <= 'F') return static_cast<int>(c - 'A' + 10);
  return -1;
}

// Python's html.unescape: &(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)
std::u32string html_unescape(const std::u32string& s) {
  if (s.find(U'&') == std::u32string::npos) return s;
  std::u32string out;
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    if (s[i] != U'&') {
      out.push_back(s[i++]);
      continue;
    }
    size_t k = i + 1;
    if (k < n && s[k] == U'#') {
      const int base = (k + 1 < n && (s[k + 1] == 'x' || s[k + 1] == 'X')) ? 16 : 10;
      k += base == 16 ? 2 : 1;
      uint64_t num = 0;
      size_t digits = 0;
      while (k < n && hex_value(s[k]) >= 0 && hex_value(s[k]) < base) {
        num = std::min<uint64_t>(num * base + hex_value(s[k++]), 0x110000);
        ++digits;
      }
      if (digits == 0) {  // "&#" without a number: not a reference
        out.push_back(s[i++]);
        continue;
      }
      if (k < n && s[k] == U';') ++k;
      out += charref(static_cast<char32_t>(num));
      i = k;
      continue;
    }
    while (k < n && k - i - 1 < 32 && s[k] != '\t' && s[k] != '\n' && s[k] != '\f' && s[k] != ' ' &&
           s[k] != '<' && s[k] != '&' && s[k] != '#' && s[k] != ';') {
      ++k;
    }
    if (k == i + 1) {
      out.push_back(s[i++]);
      continue;
    }
    const bool semicolon = k < n && s[k] == U';';
    const std::u32string name = s.substr(i + 1, k - i - 1);
    const size_t end = k + (semicolon ? 1 : 0);
    const Entity* e = find_entity(name);
    if (e != nullptr && (semicolon || e->no_semicolon)) {
      out.push_back(e->value);
    } else {
      // The longest prefix (>= 2 characters, shorter than name + ';') that is a legacy name.
      const std::u32string whole = s.substr(i + 1, end - i - 1);
      bool found = false;
      for (size_t x = whole.size() - 1; x >= 2 && !found; --x) {
        const Entity* p = find_entity(whole.substr(0, x));
        if (p != nullptr && p->no_semicolon) {
          out.push_back(p->value);
          out += whole.substr(x);
          found = true;
        }
      }
      if (!found) out += U"&" + whole;
    }
    i = end;
  }
  return out;
}

// ftfy's HTML_ENTITIES: the HTML5 names with ';', and the lower-case ones written in capitals.
std::u32string ftfy_entity(const std::u32string& name, const std::u32string& text) {
  if (const Entity* e = find_entity(name)) return std::u32string(1, e->value);
  std::u32string lower = name;
  for (char32_t& c : lower) {
    if (c >= 'a' && c <= 'z') return text;
    if (c >= 'A' && c <= 'Z') c += 0x20;
  }
  const Entity* e = find_entity(lower);
  if (e != nullptr && e->value == 0xDF) return U"SS";
  return e != nullptr && e->ftfy_upper != 0 ? std::u32string(1, e->ftfy_upper) : text;
}

// ftfy's unescape_html: only &#?[0-9A-Za-z]{1,24}; is decoded, and only when fully consumed.
std::u32string ftfy_unescape(const std::u32string& s) {
  if (s.find(U'&') == std::u32string::npos) return s;
  auto alnum = [](char32_t c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  };
  std::u32string out;
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    if (s[i] != U'&') {
      out.push_back(s[i++]);
      continue;
    }
    const bool hash = i + 1 < n && s[i + 1] == U'#';
    size_t k = i + 1 + (hash ? 1 : 0);
    while (k < n && alnum(s[k])) ++k;
    const size_t len = k - i - 1 - (hash ? 1 : 0);
    if (len == 0 || len > 24 || k >= n || s[k] != U';') {
      out.push_back(s[i++]);
      continue;
    }
    const std::u32string text = s.substr(i, k + 1 - i);
    if (hash) {
      const std::u32string decoded = html_unescape(text);
      out += decoded.find(U';') == std::u32string::npos ? decoded : text;
    } else {
      out += ftfy_entity(text.substr(1, len), text);
    }
    i = k + 1;
  }
  return out;
}

// ---- ftfy.fix_text, in part --------------------------------------------------------------------

// ftfy's LIGATURES.
const struct {
  char32_t from;
  const char32_t* to;
} kLigatures[] = {
    {0x132, U"IJ"},       {0x133, U"ij"},      {0x149, U"\u02BCn"}, {0x1C4, U"D\u017D"},
    {0x1C5, U"D\u017E"},  {0x1C6, U"d\u017E"}, {0x1C7, U"LJ"},      {0x1C8, U"Lj"},
    {0x1C9, U"lj"},       {0x1CA, U"NJ"},      {0x1CB, U"Nj"},      {0x1CC, U"nj"},
    {0x1F1, U"DZ"},       {0x1F2, U"Dz"},      {0x1F3, U"dz"},      {0xFB00, U"ff"},
    {0xFB01, U"fi"},      {0xFB02, U"fl"},     {0xFB03, U"ffi"},    {0xFB04, U"ffl"},
    {0xFB05, U"\u017Ft"}, {0xFB06, U"st"},
};

const char32_t* ligature(char32_t c) {
  for (const auto& l : kLigatures) {
    if (l.from == c) return l.to;
  }
  return nullptr;
}

// fix_c1_controls, fix_latin_ligatures, fix_character_width and uncurl_quotes: all map single
// characters, so applying them in turn to each character equals ftfy's passes over the text.
void append_fixed_char(std::u32string& out, char32_t c) {
  if (c >= 0x80 && c <= 0x9F) {  // C1 control -> Windows-1252 ("sloppy": unmapped bytes stay)
    for (const CharMap& m : kInvalidCharrefs) {
      if (m.from == c) {
        c = m.to;
        break;
      }
    }
  }
  const char32_t single[2] = {c, 0};
  const char32_t* lig = ligature(c);
  for (const char32_t* p = lig != nullptr ? lig : single; *p != 0; ++p) {
    char32_t d = *p;
    if (d == 0x3000) {
      d = U' ';
    } else if (d == 0xFFE3) {  // FULLWIDTH MACRON: NFKC gives space + combining macron
      out.push_back(U' ');
      d = 0x304;
    } else {
      d = map_runs(kWidthRuns, d);
    }
    if (d == 0x2BC || (d >= 0x2018 && d <= 0x201B)) d = U'\'';
    if (d >= 0x201C && d <= 0x201F) d = U'"';
    out.push_back(d);
  }
}

bool is_removed_control(char32_t c) {
  return c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F ||
         (c >= 0x206A && c <= 0x206F) || c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC);
}

// NFC, in part: singleton decompositions, the few multi-character ones of the blocks above, and
// compositions of the previous character with one combining mark.
void append_nfc(std::u32string& out, char32_t c) {
  switch (c) {
    case 0x344:
      append_nfc(out, 0x308), c = 0x301;
      break;
    case 0x2ADC:
      out.push_back(0x2ADD), c = 0x338;
      break;
    default:
      if (c >= 0x958 && c <= 0x95F) {
        static constexpr char32_t kBase[] = {0x915, 0x916, 0x917, 0x91C,
                                             0x921, 0x922, 0x92B, 0x92F};
        out.push_back(kBase[c - 0x958]);
        c = 0x93C;
      }
  }
  const bool maybe_singleton = (c >= 0x340 && c <= 0x387) || (c >= 0x1F70 && c <= 0x232A);
  const bool maybe_mark = (c >= 0x300 && c <= 0x36F);
  if (!maybe_singleton && !maybe_mark) {
    out.push_back(c);
    return;
  }
  for (const Composition& k : kCompositions) {
    if (k.mark == 0 && k.base == c) c = k.composed;
  }
  for (const Composition& k : kCompositions) {
    if (k.mark == c && !out.empty() && k.base == out.back()) {
      out.back() = k.composed;
      return;
    }
  }
  out.push_back(c);
}

std::u32string ftfy_fix_segment(std::u32string text, bool unescape) {
  while (true) {
    const std::u32string original = text;
    if (unescape) text = ftfy_unescape(text);
    std::u32string mapped;
    for (char32_t c : text) append_fixed_char(mapped, c);
    std::u32string lines;  // fix_line_breaks
    for (size_t i = 0; i < mapped.size(); ++i) {
      const char32_t c = mapped[i];
      if (c == U'\r' && i + 1 < mapped.size() && mapped[i + 1] == U'\n') continue;
      const bool line_break = c == U'\r' || c == 0x2028 || c == 0x2029 || c == 0x85;
      lines.push_back(line_break ? U'\n' : c);
    }
    std::u32string cleaned;  // remove_terminal_escapes (\033\[((?:\d|;)*)([a-zA-Z])), controls
    for (size_t i = 0; i < lines.size(); ++i) {
      if (lines[i] == 0x1B && i + 1 < lines.size() && lines[i + 1] == U'[') {
        size_t k = i + 2;
        while (k < lines.size() && ((lines[k] >= '0' && lines[k] <= '9') || lines[k] == ';')) ++k;
        if (k < lines.size() && ((lines[k] | 0x20) >= 'a' && (lines[k] | 0x20) <= 'z')) {
          i = k;
          continue;
        }
      }
      if (!is_removed_control(lines[i])) cleaned.push_back(lines[i]);
    }
    text.clear();
    for (char32_t c : cleaned) append_nfc(text, c);
    if (text == original) return text;
  }
}

// ftfy.fix_text: line by line; once a line contains '<', HTML is no longer unescaped (ftfy's
// "auto" setting is switched off for that line and, as ftfy 6.3 does, every line after it).
std::u32string ftfy_fix_text(const std::u32string& text) {
  std::u32string out;
  bool unescape = true;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t newline = text.find(U'\n', pos);
    const size_t end = newline == std::u32string::npos ? text.size() : newline + 1;
    const std::u32string segment = text.substr(pos, end - pos);
    if (segment.find(U'<') != std::u32string::npos) unescape = false;
    out += ftfy_fix_segment(segment, unescape);
    pos = end;
  }
  return out;
}

}  // namespace

// whitespace_clean(basic_clean(text)).lower()
std::u32string clean_clip_text(const std::u32string& text) {
  const std::u32string basic = py_strip(html_unescape(html_unescape(ftfy_fix_text(text))));
  std::u32string spaced;  // re.sub(r"\s+", " ", text)
  bool in_space = false;
  for (char32_t c : basic) {
    if (!is_white_space(c)) {
      spaced.push_back(c);
    } else if (!in_space) {
      spaced.push_back(U' ');
    }
    in_space = is_white_space(c);
  }
  return py_lower(py_strip(spaced));
}

}  // namespace anagram::detail
