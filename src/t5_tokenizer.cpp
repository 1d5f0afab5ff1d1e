#include "anagram/t5_tokenizer.h"

#include <algorithm>
#include <cfloat>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string_view>
#include <unordered_map>

#include "anagram/error.h"

namespace anagram {
namespace {

// ---- UTF-8 ----

// Decodes UTF-8, rejecting what Python's str could not hold: truncated or overlong sequences,
// surrogates and code points above U+10FFFF.
std::u32string decode_utf8(const std::string& text) {
  std::u32string out;
  out.reserve(text.size());
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  for (size_t i = 0; i < n;) {
    const unsigned char b = s[i];
    int extra = 0;
    char32_t cp = 0;
    char32_t min = 0;
    if (b < 0x80) {
      cp = b;
    } else if ((b & 0xE0) == 0xC0) {
      extra = 1, cp = b & 0x1F, min = 0x80;
    } else if ((b & 0xF0) == 0xE0) {
      extra = 2, cp = b & 0x0F, min = 0x800;
    } else if ((b & 0xF8) == 0xF0) {
      extra = 3, cp = b & 0x07, min = 0x10000;
    } else {
      throw Error(ErrorKind::kInvalidArgument,
                  "text is not valid UTF-8 (byte " + std::to_string(i) + ")");
    }
    for (int k = 1; k <= extra; ++k) {
      if (i + k >= n || (s[i + k] & 0xC0) != 0x80) {
        throw Error(ErrorKind::kInvalidArgument,
                    "text is not valid UTF-8 (bad sequence at byte " + std::to_string(i) + ")");
      }
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000)) {
      throw Error(ErrorKind::kInvalidArgument,
                  "text is not valid UTF-8 (overlong, surrogate or out-of-range code point at "
                  "byte " +
                      std::to_string(i) + ")");
    }
    out.push_back(cp);
    i += 1 + extra;
  }
  return out;
}

void append_utf8(char32_t cp, std::string& out) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string encode_utf8(const std::u32string& text) {
  std::string out;
  out.reserve(text.size());
  for (char32_t cp : text) append_utf8(cp, out);
  return out;
}

// ---- Unicode tables (Python 3.11's unicodedata, Unicode 14.0) ----

// Python's str.isspace().
bool is_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

// Every simple lower-case mapping of str.lower() as runs: code points first..last, every
// `stride`-th one, map to cp + delta. Made with, for every code point c,
// `len(c.lower()) == 1 and c.lower() != c` (the only longer mapping is U+0130, handled apart).
struct CaseRun {
  char32_t first, last;
  int stride;
  int delta;
};
constexpr CaseRun kLowerRuns[] = {
    {0x41, 0x5A, 1, 32},         {0xC0, 0xD6, 1, 32},         {0xD8, 0xDE, 1, 32},
    {0x100, 0x12E, 2, 1},        {0x132, 0x136, 2, 1},        {0x139, 0x147, 2, 1},
    {0x14A, 0x176, 2, 1},        {0x178, 0x178, 1, -121},     {0x179, 0x17D, 2, 1},
    {0x181, 0x181, 1, 210},      {0x182, 0x184, 2, 1},        {0x186, 0x186, 1, 206},
    {0x187, 0x187, 1, 1},        {0x189, 0x18A, 1, 205},      {0x18B, 0x18B, 1, 1},
    {0x18E, 0x18E, 1, 79},       {0x18F, 0x18F, 1, 202},      {0x190, 0x190, 1, 203},
    {0x191, 0x191, 1, 1},        {0x193, 0x193, 1, 205},      {0x194, 0x194, 1, 207},
    {0x196, 0x196, 1, 211},      {0x197, 0x197, 1, 209},      {0x198, 0x198, 1, 1},
    {0x19C, 0x19C, 1, 211},      {0x19D, 0x19D, 1, 213},      {0x19F, 0x19F, 1, 214},
    {0x1A0, 0x1A4, 2, 1},        {0x1A6, 0x1A6, 1, 218},      {0x1A7, 0x1A7, 1, 1},
    {0x1A9, 0x1A9, 1, 218},      {0x1AC, 0x1AC, 1, 1},        {0x1AE, 0x1AE, 1, 218},
    {0x1AF, 0x1AF, 1, 1},        {0x1B1, 0x1B2, 1, 217},      {0x1B3, 0x1B5, 2, 1},
    {0x1B7, 0x1B7, 1, 219},      {0x1B8, 0x1B8, 1, 1},        {0x1BC, 0x1BC, 1, 1},
    {0x1C4, 0x1C4, 1, 2},        {0x1C5, 0x1C5, 1, 1},        {0x1C7, 0x1C7, 1, 2},
    {0x1C8, 0x1C8, 1, 1},        {0x1CA, 0x1CA, 1, 2},        {0x1CB, 0x1DB, 2, 1},
    {0x1DE, 0x1EE, 2, 1},        {0x1F1, 0x1F1, 1, 2},        {0x1F2, 0x1F4, 2, 1},
    {0x1F6, 0x1F6, 1, -97},      {0x1F7, 0x1F7, 1, -56},      {0x1F8, 0x21E, 2, 1},
    {0x220, 0x220, 1, -130},     {0x222, 0x232, 2, 1},        {0x23A, 0x23A, 1, 10795},
    {0x23B, 0x23B, 1, 1},        {0x23D, 0x23D, 1, -163},     {0x23E, 0x23E, 1, 10792},
    {0x241, 0x241, 1, 1},        {0x243, 0x243, 1, -195},     {0x244, 0x244, 1, 69},
    {0x245, 0x245, 1, 71},       {0x246, 0x24E, 2, 1},        {0x370, 0x372, 2, 1},
    {0x376, 0x376, 1, 1},        {0x37F, 0x37F, 1, 116},      {0x386, 0x386, 1, 38},
    {0x388, 0x38A, 1, 37},       {0x38C, 0x38C, 1, 64},       {0x38E, 0x38F, 1, 63},
    {0x391, 0x3A1, 1, 32},       {0x3A3, 0x3AB, 1, 32},       {0x3CF, 0x3CF, 1, 8},
    {0x3D8, 0x3EE, 2, 1},        {0x3F4, 0x3F4, 1, -60},      {0x3F7, 0x3F7, 1, 1},
    {0x3F9, 0x3F9, 1, -7},       {0x3FA, 0x3FA, 1, 1},        {0x3FD, 0x3FF, 1, -130},
    {0x400, 0x40F, 1, 80},       {0x410, 0x42F, 1, 32},       {0x460, 0x480, 2, 1},
    {0x48A, 0x4BE, 2, 1},        {0x4C0, 0x4C0, 1, 15},       {0x4C1, 0x4CD, 2, 1},
    {0x4D0, 0x52E, 2, 1},        {0x531, 0x556, 1, 48},       {0x10A0, 0x10C5, 1, 7264},
    {0x10C7, 0x10C7, 1, 7264},   {0x10CD, 0x10CD, 1, 7264},   {0x13A0, 0x13EF, 1, 38864},
    {0x13F0, 0x13F5, 1, 8},      {0x1C90, 0x1CBA, 1, -3008},  {0x1CBD, 0x1CBF, 1, -3008},
    {0x1E00, 0x1E94, 2, 1},      {0x1E9E, 0x1E9E, 1, -7615},  {0x1EA0, 0x1EFE, 2, 1},
    {0x1F08, 0x1F0F, 1, -8},     {0x1F18, 0x1F1D, 1, -8},     {0x1F28, 0x1F2F, 1, -8},
    {0x1F38, 0x1F3F, 1, -8},     {0x1F48, 0x1F4D, 1, -8},     {0x1F59, 0x1F5F, 2, -8},
    {0x1F68, 0x1F6F, 1, -8},     {0x1F88, 0x1F8F, 1, -8},     {0x1F98, 0x1F9F, 1, -8},
    {0x1FA8, 0x1FAF, 1, -8},     {0x1FB8, 0x1FB9, 1, -8},     {0x1FBA, 0x1FBB, 1, -74},
    {0x1FBC, 0x1FBC, 1, -9},     {0x1FC8, 0x1FCB, 1, -86},    {0x1FCC, 0x1FCC, 1, -9},
    {0x1FD8, 0x1FD9, 1, -8},     {0x1FDA, 0x1FDB, 1, -100},   {0x1FE8, 0x1FE9, 1, -8},
    {0x1FEA, 0x1FEB, 1, -112},   {0x1FEC, 0x1FEC, 1, -7},     {0x1FF8, 0x1FF9, 1, -128},
    {0x1FFA, 0x1FFB, 1, -126},   {0x1FFC, 0x1FFC, 1, -9},     {0x2126, 0x2126, 1, -7517},
    {0x212A, 0x212A, 1, -8383},  {0x212B, 0x212B, 1, -8262},  {0x2132, 0x2132, 1, 28},
    {0x2160, 0x216F, 1, 16},     {0x2183, 0x2183, 1, 1},      {0x24B6, 0x24CF, 1, 26},
    {0x2C00, 0x2C2F, 1, 48},     {0x2C60, 0x2C60, 1, 1},      {0x2C62, 0x2C62, 1, -10743},
    {0x2C63, 0x2C63, 1, -3814},  {0x2C64, 0x2C64, 1, -10727}, {0x2C67, 0x2C6B, 2, 1},
    {0x2C6D, 0x2C6D, 1, -10780}, {0x2C6E, 0x2C6E, 1, -10749}, {0x2C6F, 0x2C6F, 1, -10783},
    {0x2C70, 0x2C70, 1, -10782}, {0x2C72, 0x2C72, 1, 1},      {0x2C75, 0x2C75, 1, 1},
    {0x2C7E, 0x2C7F, 1, -10815}, {0x2C80, 0x2CE2, 2, 1},      {0x2CEB, 0x2CED, 2, 1},
    {0x2CF2, 0x2CF2, 1, 1},      {0xA640, 0xA66C, 2, 1},      {0xA680, 0xA69A, 2, 1},
    {0xA722, 0xA72E, 2, 1},      {0xA732, 0xA76E, 2, 1},      {0xA779, 0xA77B, 2, 1},
    {0xA77D, 0xA77D, 1, -35332}, {0xA77E, 0xA786, 2, 1},      {0xA78B, 0xA78B, 1, 1},
    {0xA78D, 0xA78D, 1, -42280}, {0xA790, 0xA792, 2, 1},      {0xA796, 0xA7A8, 2, 1},
    {0xA7AA, 0xA7AA, 1, -42308}, {0xA7AB, 0xA7AB, 1, -42319}, {0xA7AC, 0xA7AC, 1, -42315},
    {0xA7AD, 0xA7AD, 1, -42305}, {0xA7AE, 0xA7AE, 1, -42308}, {0xA7B0, 0xA7B0, 1, -42258},
    {0xA7B1, 0xA7B1, 1, -42282}, {0xA7B2, 0xA7B2, 1, -42261}, {0xA7B3, 0xA7B3, 1, 928},
    {0xA7B4, 0xA7C2, 2, 1},      {0xA7C4, 0xA7C4, 1, -48},    {0xA7C5, 0xA7C5, 1, -42307},
    {0xA7C6, 0xA7C6, 1, -35384}, {0xA7C7, 0xA7C9, 2, 1},      {0xA7D0, 0xA7D0, 1, 1},
    {0xA7D6, 0xA7D8, 2, 1},      {0xA7F5, 0xA7F5, 1, 1},      {0xFF21, 0xFF3A, 1, 32},
    {0x10400, 0x10427, 1, 40},   {0x104B0, 0x104D3, 1, 40},   {0x10570, 0x1057A, 1, 39},
    {0x1057C, 0x1058A, 1, 39},   {0x1058C, 0x10592, 1, 39},   {0x10594, 0x10595, 1, 39},
    {0x10C80, 0x10CB2, 1, 64},   {0x118A0, 0x118BF, 1, 32},   {0x16E40, 0x16E5F, 1, 32},
    {0x1E900, 0x1E921, 1, 34},
};

const CaseRun* find_run(char32_t c) {
  const auto* end = std::end(kLowerRuns);
  const auto* it = std::upper_bound(std::begin(kLowerRuns), end, c,
                                    [](char32_t v, const CaseRun& r) { return v < r.first; });
  if (it == std::begin(kLowerRuns)) return nullptr;
  --it;
  if (c > it->last || (c - it->first) % it->stride != 0) return nullptr;
  return it;
}

char32_t simple_lower(char32_t c) {
  const CaseRun* run = find_run(c);
  return run ? static_cast<char32_t>(static_cast<int64_t>(c) + run->delta) : c;
}

// Is c the lower-case form of some upper-case letter?
bool is_lower_target(char32_t c) {
  for (const CaseRun& r : kLowerRuns) {
    const int64_t source = static_cast<int64_t>(c) - r.delta;
    if (source >= r.first && source <= r.last && (source - r.first) % r.stride == 0) return true;
  }
  return false;
}

struct Range {
  char32_t first, last;
};
bool in_ranges(const Range* begin, const Range* end, char32_t c) {
  return std::any_of(begin, end, [c](const Range& r) { return c >= r.first && c <= r.last; });
}

// Unicode's Case_Ignorable and Cased properties, which decide str.lower()'s final sigma, made
// with Python's own str.lower() for the blocks Latin, IPA, spacing modifiers, combining marks,
// Greek, Cyrillic (U+0000..U+052F), phonetic extensions to super/subscripts (U+1D00..U+209F),
// combining marks for symbols and letterlike symbols (U+20D0..U+214F), Latin Extended-C and -D,
// alphabetic presentation forms, variation selectors, combining half marks, U+FEFF, half/full
// width forms, emoji skin tones and tags. Elsewhere nothing is case-ignorable and Cased means
// "has a lower-case mapping or is one" (plus the mathematical letters U+1D400..U+1D7CB).
constexpr Range kCaseIgnorable[] = {
    {0x27, 0x27},       {0x2E, 0x2E},       {0x3A, 0x3A},       {0x5E, 0x5E},
    {0x60, 0x60},       {0xA8, 0xA8},       {0xAD, 0xAD},       {0xAF, 0xAF},
    {0xB4, 0xB4},       {0xB7, 0xB8},       {0x2B0, 0x36F},     {0x374, 0x375},
    {0x37A, 0x37A},     {0x384, 0x385},     {0x387, 0x387},     {0x483, 0x489},
    {0x1D2C, 0x1D6A},   {0x1D78, 0x1D78},   {0x1D9B, 0x1DFF},   {0x1FBD, 0x1FBD},
    {0x1FBF, 0x1FC1},   {0x1FCD, 0x1FCF},   {0x1FDD, 0x1FDF},   {0x1FED, 0x1FEF},
    {0x1FFD, 0x1FFE},   {0x200B, 0x200F},   {0x2018, 0x2019},   {0x2024, 0x2024},
    {0x2027, 0x2027},   {0x202A, 0x202E},   {0x2060, 0x2064},   {0x2066, 0x206F},
    {0x2071, 0x2071},   {0x207F, 0x207F},   {0x2090, 0x209C},   {0x20D0, 0x20F0},
    {0x2C7C, 0x2C7D},   {0xA720, 0xA721},   {0xA770, 0xA770},   {0xA788, 0xA78A},
    {0xA7F2, 0xA7F4},   {0xA7F8, 0xA7F9},   {0xFB1E, 0xFB1E},   {0xFE00, 0xFE0F},
    {0xFE13, 0xFE13},   {0xFE20, 0xFE2F},   {0xFEFF, 0xFEFF},   {0xFF07, 0xFF07},
    {0xFF0E, 0xFF0E},   {0xFF1A, 0xFF1A},   {0xFF3E, 0xFF3E},   {0xFF40, 0xFF40},
    {0xFF70, 0xFF70},   {0xFF9E, 0xFF9F},   {0xFFE3, 0xFFE3},   {0xFFF9, 0xFFFB},
    {0x1F3FB, 0x1F3FF}, {0xE0001, 0xE0001}, {0xE0020, 0xE007F}, {0xE0100, 0xE01EF},
};
// Cased code points that neither have a lower-case mapping nor are one's target.
constexpr Range kOtherCased[] = {
    {0xAA, 0xAA},     {0xB5, 0xB5},       {0xBA, 0xBA},       {0x130, 0x131},   {0x138, 0x138},
    {0x149, 0x149},   {0x17F, 0x17F},     {0x18D, 0x18D},     {0x19B, 0x19B},   {0x1AA, 0x1AB},
    {0x1BA, 0x1BA},   {0x1BE, 0x1BE},     {0x1F0, 0x1F0},     {0x221, 0x221},   {0x234, 0x239},
    {0x255, 0x255},   {0x258, 0x258},     {0x25A, 0x25A},     {0x25D, 0x25F},   {0x262, 0x262},
    {0x264, 0x264},   {0x267, 0x267},     {0x26D, 0x26E},     {0x270, 0x270},   {0x273, 0x274},
    {0x276, 0x27C},   {0x27E, 0x27F},     {0x281, 0x281},     {0x284, 0x286},   {0x28D, 0x291},
    {0x293, 0x293},   {0x295, 0x29C},     {0x29F, 0x2AF},     {0x390, 0x390},   {0x3B0, 0x3B0},
    {0x3C2, 0x3C2},   {0x3D0, 0x3D6},     {0x3F0, 0x3F1},     {0x3F5, 0x3F5},   {0x3FC, 0x3FC},
    {0x1D00, 0x1D2B}, {0x1D6B, 0x1D77},   {0x1D7A, 0x1D7C},   {0x1D7E, 0x1D8D}, {0x1D8F, 0x1D9A},
    {0x1E96, 0x1E9D}, {0x1E9F, 0x1E9F},   {0x1F50, 0x1F50},   {0x1F52, 0x1F52}, {0x1F54, 0x1F54},
    {0x1F56, 0x1F56}, {0x1FB2, 0x1FB2},   {0x1FB4, 0x1FB4},   {0x1FB6, 0x1FB7}, {0x1FBE, 0x1FBE},
    {0x1FC2, 0x1FC2}, {0x1FC4, 0x1FC4},   {0x1FC6, 0x1FC7},   {0x1FD2, 0x1FD3}, {0x1FD6, 0x1FD7},
    {0x1FE2, 0x1FE4}, {0x1FE6, 0x1FE7},   {0x1FF2, 0x1FF2},   {0x1FF4, 0x1FF4}, {0x1FF6, 0x1FF7},
    {0x2102, 0x2102}, {0x2107, 0x2107},   {0x210A, 0x2113},   {0x2115, 0x2115}, {0x2119, 0x211D},
    {0x2124, 0x2124}, {0x2128, 0x2128},   {0x212C, 0x212D},   {0x212F, 0x2131}, {0x2133, 0x2134},
    {0x2139, 0x2139}, {0x213C, 0x213F},   {0x2145, 0x2149},   {0x2C71, 0x2C71}, {0x2C74, 0x2C74},
    {0x2C77, 0x2C7B}, {0xA730, 0xA731},   {0xA771, 0xA778},   {0xA78E, 0xA78E}, {0xA795, 0xA795},
    {0xA7AF, 0xA7AF}, {0xA7D3, 0xA7D3},   {0xA7D5, 0xA7D5},   {0xA7FA, 0xA7FA}, {0xFB00, 0xFB06},
    {0xFB13, 0xFB17}, {0x1D400, 0x1D6A5}, {0x1D6A8, 0x1D7CB},
};

bool is_case_ignorable(char32_t c) {
  return in_ranges(std::begin(kCaseIgnorable), std::end(kCaseIgnorable), c);
}
bool is_cased(char32_t c) {
  return find_run(c) != nullptr || in_ranges(std::begin(kOtherCased), std::end(kOtherCased), c) ||
         is_lower_target(c);
}

// Ref: CPython Objects/unicodeobject.c handle_capital_sigma: U+03A3 lowers to final U+03C2 when
// preceded by a cased letter and not followed by one (case-ignorable characters skipped).
char32_t lower_sigma(const std::u32string& text, size_t i) {
  size_t j = i;
  while (j > 0 && is_case_ignorable(text[j - 1])) --j;
  bool final_sigma = j > 0 && is_cased(text[j - 1]);
  if (final_sigma) {
    size_t k = i + 1;
    while (k < text.size() && is_case_ignorable(text[k])) ++k;
    final_sigma = k == text.size() || !is_cased(text[k]);
  }
  return final_sigma ? 0x3C2 : 0x3C3;
}

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
std::string lstrip(const std::string& text) {
  const std::u32string u = decode_utf8(text);
  size_t b = 0;
  while (b < u.size() && is_space(u[b])) ++b;
  return encode_utf8(u.substr(b));
}
std::string rstrip(const std::string& text) {
  std::u32string u = decode_utf8(text);
  while (!u.empty() && is_space(u.back())) u.pop_back();
  return encode_utf8(u);
}

// ---- SentencePiece (unigram) model, read and run without libsentencepiece ----
//
// Debian's libsentencepiece exports a bundled protobuf 3.14 whose symbols clash with LibTorch's
// libprotobuf 3.21 (a process loading both crashes at start-up), so spiece.model is parsed here
// and encoded with the same normalisation and Viterbi search as SentencePiece 0.1.99 (the
// version transformers runs in Python).

enum class PieceType {
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6
};

}  // namespace

struct T5Tokenizer::Model {
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
  std::pair<std::string, size_t> normalize_prefix(const char* data, size_t size) const;
  std::string normalize(const std::string& input) const;
  std::vector<std::string> encode_pieces(const std::string& text) const;
};

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
void read_charsmap(const std::string& blob, T5Tokenizer::Model& model, const std::string& path) {
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

std::shared_ptr<const T5Tokenizer::Model> parse_model(const std::string& bytes,
                                                      const std::string& path) {
  auto model = std::make_shared<T5Tokenizer::Model>();
  int model_type = 1;  // UNIGRAM
  std::string charsmap;
  ProtoReader top(bytes.data(), bytes.size(), path);
  while (!top.done()) {
    int wire = 0;
    const uint32_t field = top.key(wire);
    if (wire != 2 || (field != 1 && field != 2 && field != 3)) {
      top.skip(wire);
      continue;
    }
    const std::string message = top.bytes();
    ProtoReader sub(message.data(), message.size(), path);
    if (field == 1) {  // SentencePiece {piece = 1, score = 2, type = 3}
      T5Tokenizer::Model::Piece piece;
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
      model->pieces.push_back(std::move(piece));
    } else if (field == 2) {  // TrainerSpec
      while (!sub.done()) {
        const uint32_t f = sub.key(wire);
        if (f == 3 && wire == 0) {
          model_type = static_cast<int>(sub.varint());
        } else if (f == 24 && wire == 0) {
          model->treat_whitespace_as_suffix = sub.varint() != 0;
        } else if (f == 35 && wire == 0) {
          model->byte_fallback = sub.varint() != 0;
        } else {
          sub.skip(wire);
        }
      }
    } else {  // NormalizerSpec
      while (!sub.done()) {
        const uint32_t f = sub.key(wire);
        if (f == 2 && wire == 2) {
          charsmap = sub.bytes();
        } else if (f == 3 && wire == 0) {
          model->add_dummy_prefix = sub.varint() != 0;
        } else if (f == 4 && wire == 0) {
          model->remove_extra_whitespaces = sub.varint() != 0;
        } else if (f == 5 && wire == 0) {
          model->escape_whitespaces = sub.varint() != 0;
        } else {
          sub.skip(wire);
        }
      }
    }
  }
  const auto bad = [&](const std::string& what) {
    throw Error(ErrorKind::kBundle, "tokenizer '" + path + "': " + what);
  };
  if (model_type != 1) bad("only unigram SentencePiece models are supported");
  if (model->pieces.empty()) bad("not a SentencePiece model (no pieces)");
  read_charsmap(charsmap, *model, path);
  // Ref: sentencepiece src/model_interface.cc InitializePieces; src/unigram_model.cc Model().
  model->min_score = FLT_MAX;
  model->max_score = FLT_MIN;  // sic: the smallest positive float, as SentencePiece has it
  for (size_t i = 0; i < model->pieces.size(); ++i) {
    const auto& piece = model->pieces[i];
    if (piece.text.empty()) bad("empty piece " + std::to_string(i));
    if (piece.type < PieceType::kNormal || piece.type > PieceType::kByte) bad("bad piece type");
    if (!model->ids.emplace(piece.text, static_cast<int>(i)).second) {
      bad("piece '" + piece.text + "' is defined twice");
    }
    if (piece.type == PieceType::kUnknown) {
      if (model->unk_id >= 0) bad("two unknown pieces");
      model->unk_id = static_cast<int>(i);
    }
    if (piece.type == PieceType::kUserDefined) model->user_defined.push_back(piece.text);
    if (piece.type == PieceType::kNormal) {
      model->min_score = std::min(model->min_score, piece.score);
      model->max_score = std::max(model->max_score, piece.score);
    }
    if (model->in_lattice(static_cast<int>(i))) {
      model->max_piece_bytes = std::max(model->max_piece_bytes, piece.text.size());
    }
  }
  if (model->unk_id < 0) bad("no unknown piece");
  return model;
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

// Ref: sentencepiece src/normalizer.cc Normalizer::NormalizePrefix: a user-defined piece passes
// unchanged; else the longest rule of the charsmap; else one UTF-8 character.
// Returns the replacement and the number of input bytes it consumes.
std::pair<std::string, size_t> T5Tokenizer::Model::normalize_prefix(const char* data,
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
std::string T5Tokenizer::Model::normalize(const std::string& text) const {
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
std::vector<std::string> T5Tokenizer::Model::encode_pieces(const std::string& text) const {
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

namespace {

[[noreturn]] void bundle_error(const std::string& path, const std::string& what) {
  throw Error(ErrorKind::kBundle, "tokenizer '" + path + "': " + what);
}

}  // namespace

T5Tokenizer T5Tokenizer::load(const std::string& spiece_path, int max_length, int64_t pad_id,
                              int64_t eos_id) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(spiece_path, ec)) {
    bundle_error(spiece_path, "SentencePiece model file does not exist");
  }
  std::ifstream in(spiece_path, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (!in) bundle_error(spiece_path, "cannot read the SentencePiece model");
  T5Tokenizer tokenizer;
  tokenizer.model_ = parse_model(bytes.str(), spiece_path);
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
// text.lower().strip(). Ref: CPython Objects/unicodeobject.c lower_ucs4 for the special cases.
std::string T5Tokenizer::preprocess(const std::string& text) {
  const std::u32string in = decode_utf8(text);
  std::u32string lowered;
  lowered.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    const char32_t c = in[i];
    if (c == 0x130) {  // İ -> i + combining dot above (SpecialCasing.txt)
      lowered.push_back(0x69);
      lowered.push_back(0x307);
    } else if (c == 0x3A3) {
      lowered.push_back(lower_sigma(in, i));
    } else {
      lowered.push_back(simple_lower(c));
    }
  }
  size_t begin = 0;
  size_t end = lowered.size();
  while (begin < end && is_space(lowered[begin])) ++begin;
  while (end > begin && is_space(lowered[end - 1])) --end;
  return encode_utf8(lowered.substr(begin, end - begin));
}

}  // namespace anagram
