// The view registry: name or alias -> factory, suggestions for typos, `anagram views` rows.
//
// To add a view: write src/views/<name>.cpp defining `ViewEntry <name>_view_entry()` in
// anagram::views_detail, then add one X(<name>) line below.
#include <algorithm>
#include <cctype>
#include <string>
#include <vector>

#include "anagram/core/error.h"
#include "views/view_util.h"

#define ANAGRAM_VIEW_LIST(X) \
  X(identity)                \
  X(flip)                    \
  X(mirror)                  \
  X(rotate_cw)               \
  X(rotate_ccw)              \
  X(rotate_180)              \
  X(negate)                  \
  X(skew)                    \
  X(patch_permute)           \
  X(pixel_permute)           \
  X(inner_circle)            \
  X(square_hinge)            \
  X(jigsaw)                  \
  X(low_pass)                \
  X(high_pass)               \
  X(triple_low_pass)         \
  X(triple_medium_pass)      \
  X(triple_high_pass)        \
  X(grayscale)               \
  X(color)                   \
  X(motion)                  \
  X(motion_res)              \
  X(scale)

namespace anagram {
namespace views_detail {

#define ANAGRAM_DECLARE_VIEW(name) ViewEntry name##_view_entry();
ANAGRAM_VIEW_LIST(ANAGRAM_DECLARE_VIEW)
#undef ANAGRAM_DECLARE_VIEW

}  // namespace views_detail

namespace {

using views_detail::ViewEntry;

const std::vector<ViewEntry>& registry() {
  static const std::vector<ViewEntry> entries = {
#define ANAGRAM_VIEW_ENTRY(name) views_detail::name##_view_entry(),
      ANAGRAM_VIEW_LIST(ANAGRAM_VIEW_ENTRY)
#undef ANAGRAM_VIEW_ENTRY
  };
  return entries;
}

// Lower case, '-' and ' ' read as '_', surrounding blanks dropped.
std::string normalize(const std::string& name) {
  std::string out;
  for (const char c : name) {
    if (c == '-' || c == ' ') {
      out += '_';
    } else {
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
  }
  const auto begin = out.find_first_not_of('_');
  const auto end = out.find_last_not_of('_');
  return begin == std::string::npos ? "" : out.substr(begin, end - begin + 1);
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

[[noreturn]] void unknown_view(const std::string& given, const std::string& key) {
  std::string best;
  size_t best_distance = std::string::npos;
  std::string known;
  for (const auto& entry : registry()) {
    known += (known.empty() ? "" : ", ") + entry.info.name;
    std::vector<std::string> keys = entry.info.aliases;
    keys.push_back(entry.info.name);
    for (const auto& k : keys) {
      const size_t d = edit_distance(key, k);
      if (d < best_distance) {
        best_distance = d;
        best = entry.info.name;
      }
    }
  }
  std::string message = "unknown view '" + given + "'";
  if (best_distance <= std::max<size_t>(2, key.size() / 3)) {
    message += " (did you mean '" + best + "'?)";
  }
  message += "; known views: " + known + " (see `anagram views`)";
  throw Error(ErrorKind::kInvalidArgument, message);
}

}  // namespace

ViewPtr make_view(const std::string& name_or_alias, const std::string& arg) {
  const std::string key = normalize(name_or_alias);
  for (const auto& entry : registry()) {
    const auto& aliases = entry.info.aliases;
    if (key == entry.info.name || std::find(aliases.begin(), aliases.end(), key) != aliases.end()) {
      return entry.make(arg);
    }
  }
  unknown_view(name_or_alias, key);
}

ViewPtr make_view_from_spec(const std::string& spec) {
  const auto colon = spec.find(':');
  if (colon == std::string::npos) return make_view(spec);
  return make_view(spec.substr(0, colon), spec.substr(colon + 1));
}

std::vector<ViewInfo> list_views() {
  std::vector<ViewInfo> infos;
  for (const auto& entry : registry()) infos.push_back(entry.info);
  return infos;
}

}  // namespace anagram
