// The gallery's data: cards read from sample folders, the scores file of `anagram score --json`,
// which score belongs to which card, and the page's groups. The page itself: gallery_html.cpp.
#include "anagram/eval/gallery.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <tuple>

#include "anagram/core/error.h"
#include "anagram/core/error_text.h"
#include "anagram/pipeline/sample_record.h"
#include "core/json_fields.h"
#include "models/model_folder.h"

namespace anagram {
namespace {

namespace fs = std::filesystem;

constexpr uintmax_t kMaxMetadataBytes = 64u << 20;  // as read_sample_record
constexpr size_t kMaxAnimations = 4;
constexpr size_t kMaxFolderEntries = 100000;  // a sample folder holds tens of files
constexpr size_t kMaxScoredSamples = 1000000;
constexpr size_t kMaxGroups = 10000;

bool ends_with_ci(const std::string& text, const std::string& suffix) {
  if (text.size() < suffix.size()) return false;
  return std::equal(suffix.begin(), suffix.end(), text.end() - static_cast<long>(suffix.size()),
                    [](char a, char b) {
                      return std::tolower(static_cast<unsigned char>(a)) ==
                             std::tolower(static_cast<unsigned char>(b));
                    });
}

// (side, sheet) of every stage whose sheet is there, the last stage first; metadata.json has
// already passed read_sample_record, so only the sheets' names are read here.
std::vector<std::pair<int, std::string>> read_sheets(const fs::path& folder) {
  const auto fail = [&](const std::string& what) {
    throw Error(ErrorKind::kInvalidArgument,
                "sample '" + printable(folder.string()) + "': " + what);
  };
  const std::string bytes =
      detail::read_manifest_bytes(folder / "metadata.json", kMaxMetadataBytes, fail);
  const nlohmann::json doc =
      detail::parse_json_bounded(bytes, ErrorKind::kInvalidArgument, "metadata.json", 64);
  const detail::JsonFields j(doc, "", ErrorKind::kInvalidArgument);
  std::vector<std::pair<int, std::string>> sheets;
  for (const auto& stage : j.objects("files", 8)) {
    try {
      const int size = static_cast<int>(stage.integer("size", 1, 65536));
      sheets.emplace_back(size, detail::folder_file(folder, "sample folder", stage, "sheet"));
    } catch (const Error&) {
      // A stage without its sheet is shown by its anagram (or not at all): not an error.
    }
  }
  std::reverse(sheets.begin(), sheets.end());
  return sheets;
}

// Regular files (not links) named animation*.webp or animation*.mp4, sorted, a few at most.
std::vector<std::string> find_animations(const fs::path& folder) {
  std::vector<std::string> found;
  std::error_code ec;
  fs::directory_iterator it(folder, ec);
  for (size_t seen = 0; !ec && it != fs::directory_iterator() && seen < kMaxFolderEntries;
       it.increment(ec), ++seen) {
    const std::string name = it->path().filename().string();
    if (name.rfind("animation", 0) != 0 || it->is_symlink(ec) || !it->is_regular_file(ec)) continue;
    if (ends_with_ci(name, ".webp") || ends_with_ci(name, ".mp4")) found.push_back(name);
  }
  std::sort(found.begin(), found.end());
  if (found.size() > kMaxAnimations) found.resize(kMaxAnimations);
  return found;
}

GalleryScoredSample read_scored_sample(const detail::JsonFields& s) {
  GalleryScoredSample out;
  out.folder = s.string("folder", 4096);
  out.seed = s.unsigned_integer("seed");
  out.prompts = s.strings("prompts", kMaxTasks, kMaxPromptBytes);
  out.score.alignment = s.number("alignment", -1.001, 1.001);
  out.score.concealment = s.number("concealment", 0.0, 1.0);
  out.score.selected = s.boolean("selected", false);
  return out;
}

Estimate read_estimate(const detail::JsonFields& group, const std::string& key) {
  const detail::JsonFields e = group.object(key);
  Estimate out;
  out.value = e.number("value", -1.001, 1.001);
  const nlohmann::json& ci = e.raw("ci95");
  if (!ci.is_array() || ci.size() != 2 || !ci[0].is_number() || !ci[1].is_number()) {
    e.fail("ci95", "must be a list of two numbers");
  }
  out.interval.low = ci[0].get<double>();
  out.interval.high = ci[1].get<double>();
  for (const double v : {out.interval.low, out.interval.high}) {
    if (!std::isfinite(v) || v < -1.001 || v > 1.001) e.fail("ci95", "must lie in [-1, 1]");
  }
  return out;
}

GroupSummary read_group_summary(const detail::JsonFields& g) {
  GroupSummary out;
  out.group = g.string("group", 200);
  out.samples = static_cast<size_t>(g.integer("samples", 1, kMaxScoredSamples));
  out.alignment_mean = read_estimate(g, "alignment_mean");
  out.alignment_q90 = read_estimate(g, "alignment_q90");
  out.alignment_q95 = read_estimate(g, "alignment_q95");
  out.concealment_mean = read_estimate(g, "concealment_mean");
  out.concealment_q90 = read_estimate(g, "concealment_q90");
  out.concealment_q95 = read_estimate(g, "concealment_q95");
  return out;
}

// The path's components from the end; "." and empty ones dropped.
std::vector<std::string> reversed_components(const fs::path& path) {
  std::vector<std::string> out;
  for (const auto& part : path.lexically_normal()) {
    const std::string s = part.string();
    if (!s.empty() && s != "." && s != "/") out.push_back(s);
  }
  std::reverse(out.begin(), out.end());
  return out;
}

size_t common_tail(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
  return n;
}

fs::path resolved(const fs::path& path) {
  std::error_code ec;
  fs::path out = fs::weakly_canonical(path, ec);
  return ec ? path.lexically_normal() : out;
}

// The scored sample of `card`: the same folder, else the unique longest match of trailing path
// components (at least `needed`), with the same seed and prompts; nullptr when none is.
const GalleryScoredSample* match_card(const GalleryCard& card, size_t needed,
                                      const GalleryScores& scores,
                                      const std::map<fs::path, size_t>& by_path,
                                      const std::multimap<std::string, size_t>& by_name) {
  const auto agrees = [&](const GalleryScoredSample& s) {
    return s.seed == card.seed && (s.prompts.empty() || s.prompts == card.prompts);
  };
  const fs::path path = resolved(card.folder);
  if (const auto it = by_path.find(path); it != by_path.end()) {
    const GalleryScoredSample& s = scores.samples[it->second];
    return agrees(s) ? &s : nullptr;
  }
  const std::vector<std::string> mine = reversed_components(path);
  if (mine.empty()) return nullptr;
  const GalleryScoredSample* best = nullptr;
  size_t best_length = 0;
  bool tie = false;
  const auto range = by_name.equal_range(mine.front());
  for (auto it = range.first; it != range.second; ++it) {
    const GalleryScoredSample& s = scores.samples[it->second];
    const size_t length = common_tail(mine, reversed_components(s.folder));
    if (length < needed || !agrees(s)) continue;
    if (length > best_length) {
      best = &s;
      best_length = length;
      tie = false;
    } else if (length == best_length) {
      tie = true;
    }
  }
  return tie ? nullptr : best;
}

}  // namespace

GalleryCard read_gallery_card(const fs::path& folder) {
  const SampleRecord record = read_sample_record(folder);
  GalleryCard card;
  card.folder = folder;
  card.method = method_label(record.request);
  for (const Task& task : record.tasks) {
    card.prompts.push_back(task.prompt);
    card.views.push_back(task.view->spec());
  }
  card.seed = record.seed;
  card.picture_size = record.picture_size;
  card.sheets = read_sheets(folder);
  if (card.sheets.empty()) {
    card.sheets.emplace_back(record.picture_size, record.picture.filename().string());
  }
  card.animations = find_animations(folder);
  return card;
}

GalleryScores read_gallery_scores(const fs::path& file, uintmax_t max_bytes) {
  const auto fail = [&](const std::string& what) {
    throw Error(ErrorKind::kInvalidArgument,
                "scores file '" + printable(file.string()) + "': " + what);
  };
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) fail("is not a file");
  const std::string bytes = detail::read_manifest_bytes(file, max_bytes, fail);
  GalleryScores scores;
  try {
    const nlohmann::json doc =
        detail::parse_json_bounded(bytes, ErrorKind::kInvalidArgument, "the scores file", 16);
    const detail::JsonFields j(doc, "", ErrorKind::kInvalidArgument);
    scores.scorer = j.object("scorer").string("name", 200);
    for (const auto& s : j.objects("samples", kMaxScoredSamples))
      scores.samples.push_back(read_scored_sample(s));
    for (const auto& g : j.objects("summary", kMaxGroups))
      scores.summary.push_back(read_group_summary(g));
  } catch (const Error& e) {
    fail((e.field().empty() ? "" : "'" + e.field() + "': ") + e.detail() +
         " (expected what `anagram score --json` writes)");
  }
  return scores;
}

size_t attach_scores(std::vector<GalleryCard>& cards, const GalleryScores& scores,
                     const fs::path& root) {
  std::map<fs::path, size_t> by_path;
  std::multimap<std::string, size_t> by_name;
  for (size_t i = 0; i < scores.samples.size(); ++i) {
    const fs::path path = resolved(scores.samples[i].folder);
    by_path.emplace(path, i);
    const std::vector<std::string> parts = reversed_components(path);
    if (!parts.empty()) by_name.emplace(parts.front(), i);
  }
  const fs::path base = resolved(root);
  size_t matched = 0;
  for (GalleryCard& card : cards) {
    const fs::path below = resolved(card.folder).lexically_relative(base);
    const size_t needed = std::max<size_t>(1, reversed_components(below).size());
    const GalleryScoredSample* s = match_card(card, needed, scores, by_path, by_name);
    card.score = s ? std::optional<GalleryScore>(s->score) : std::nullopt;
    matched += s != nullptr;
  }
  return matched;
}

std::vector<CardGroup> group_cards(const std::vector<GalleryCard>& cards) {
  std::map<std::tuple<std::vector<std::string>, std::vector<std::string>, std::string>, size_t>
      index;
  std::vector<CardGroup> groups;
  for (size_t i = 0; i < cards.size(); ++i) {
    const GalleryCard& c = cards[i];
    const auto [it, added] = index.emplace(std::tie(c.prompts, c.views, c.method), groups.size());
    if (added) groups.push_back({c.prompts, c.views, c.method, {}});
    groups[it->second].cards.push_back(i);
  }
  std::sort(groups.begin(), groups.end(), [](const CardGroup& a, const CardGroup& b) {
    return std::tie(a.prompts, a.views, a.method) < std::tie(b.prompts, b.views, b.method);
  });
  return groups;
}

}  // namespace anagram
