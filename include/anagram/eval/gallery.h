// anagram/eval/gallery.h: one static HTML page of finished samples (`anagram gallery`): a card
// per sample folder (its sheet, its animation when there is one, prompts, views, method, seed,
// scores), grouped by prompt pair and method, sortable in the page, and the per-method summary
// of `anagram score --json` as an inline SVG plot.
//
//   anagram::GalleryOptions options;
//   options.root = "runs";                 // a gen or batch --out
//   options.scores = "runs/scores.json";   // optional: what `anagram score --json` wrote
//   const anagram::GalleryResult made = anagram::make_gallery(options);  // runs/index.html
//
// or piece by piece: read_gallery_card per folder of find_sample_folders, read_gallery_scores,
// attach_scores, render_gallery, then check_gallery_output and write_file_atomic.
//
// Where data lives: cards and scores are plain host data (no tensors); the page is one string
// in memory, written beside the samples (OUT/index.html) through a temporary file renamed into
// place. It links the pictures relative to its own folder and copies none.
//
// Everything read is the user's and untrusted: metadata.json goes through read_sample_record
// (bounded, typed), the scores file is bounded and typed, every text that comes from a file
// (prompts, views, folder names, method names) is HTML-escaped and every path URL-encoded. The
// page needs no server and no network: its CSS and script are inline (and the only ones its
// Content-Security-Policy allows, by hash), and the pictures are referenced relative to the
// page's folder, so the folder can be copied or served as it is.
//
// The page is never written through a symbolic link; an existing file is replaced only when it
// is a page anagram gallery made (its generator line says so) or when the caller forces it.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "anagram/eval/score.h"

namespace anagram {

struct GalleryScore {
  double alignment = 0;
  double concealment = 0;
  bool selected = false;  // marked by `anagram score --select`
};

struct GalleryCard {
  std::filesystem::path folder;      // the sample folder
  std::string method;                // method_label of its request: "mtl", "baseline", ...
  std::vector<std::string> prompts;  // as the model saw them (style applied), one per view
  std::vector<std::string> views;    // view specs, "rotate_180", "patch_permute:8,0"
  uint64_t seed = 0;
  int picture_size = 0;  // side of the last stage's picture
  // Pictures to show, as file names inside the folder: (side, sheet) per stage, the last stage
  // first; the anagram itself when metadata.json names no sheet that is there.
  std::vector<std::pair<int, std::string>> sheets;
  std::vector<std::string> animations;  // animation*.webp / animation*.mp4 in the folder
  std::optional<GalleryScore> score;
};

// One sample folder as a card. Throws Error(kInvalidArgument) naming the folder for a missing
// or malformed metadata.json (read_sample_record's checks).
GalleryCard read_gallery_card(const std::filesystem::path& folder);

struct GalleryScoredSample {
  std::string folder;  // as `anagram score` was given it (relative to where it ran, or absolute)
  uint64_t seed = 0;
  std::vector<std::string> prompts;
  GalleryScore score;
};

// What the page uses of the file `anagram score --json` writes.
struct GalleryScores {
  std::string scorer;  // the scorer's name
  std::vector<GalleryScoredSample> samples;
  std::vector<GroupSummary> summary;  // per method
};

// Reads an `anagram score --json` file: at most `max_bytes`, nesting bounded, every field typed
// and range-checked. Throws Error(kInvalidArgument) naming the file and the field at fault.
GalleryScores read_gallery_scores(const std::filesystem::path& file,
                                  uintmax_t max_bytes = uintmax_t{256} << 20);

// Gives each card the score of its sample: the entry whose folder is the same folder (paths
// resolved from the current folder), else the one whose path ends in the same components, at
// least as many as the card's path below `root` has; the seed and prompts must agree too.
// Returns how many cards got a score.
size_t attach_scores(std::vector<GalleryCard>& cards, const GalleryScores& scores,
                     const std::filesystem::path& root);

// A group of the page: cards with the same prompts, views and method, in card order.
struct CardGroup {
  std::vector<std::string> prompts;
  std::vector<std::string> views;
  std::string method;
  std::vector<size_t> cards;  // indices into the cards
};

// Groups sorted by prompts, then views, then method (so that one pair's methods stand together).
std::vector<CardGroup> group_cards(const std::vector<GalleryCard>& cards);

// A plot axis: [low, high] in whole steps of 1, 2 or 5 times a power of ten, about five of
// them, covering the values; a range narrower than 0.01 is first widened to 0.01 about its
// middle.
struct AxisScale {
  double low = 0, high = 1, step = 0.2;
  // Position of `value` on an axis `width` long starting at `left`.
  double position(double value, double left, double width) const;
};
AxisScale axis_scale(double low, double high);

// The per-method summary as an inline SVG: for alignment and for concealment, per method a dot
// at the mean and a square at the 0.9 quantile, each with its 95% interval as a bar, every mark
// with a <title> of its numbers. Empty for an empty summary.
std::string summary_svg(const std::vector<GroupSummary>& summary);

struct GalleryPage {
  std::filesystem::path page_folder;  // where the page will be: pictures are relative to it
  std::string title;
  const GalleryScores* scores = nullptr;  // optional: scorer name and summary plot
};

// The whole page, one self-contained HTML document. Cards appear grouped (group_cards), in
// order; `#selftest` in the page's URL makes its script sort by alignment without groups and
// write the outcome (card count, order, pictures loaded, errors seen) into <pre id="selftest">.
std::string render_gallery(const std::vector<GalleryCard>& cards, const GalleryPage& page);

// Text for HTML content or a quoted attribute: & < > " ' escaped; bytes that are not UTF-8 and
// control characters other than tab and newline become U+FFFD.
std::string html_escape(std::string_view text);

// A relative path as a URL path: each component percent-encoded (all but A-Z a-z 0-9 - . _ ~),
// joined with '/'.
std::string url_path(const std::filesystem::path& relative);

// Where the page goes: a new file, a page anagram gallery made earlier (replaced), or another
// file the caller forces out of the way.
enum class PageTarget { kNew, kOwnPage, kForced };

// Whether `page` is a regular file (not a link) that starts as render_gallery's pages do.
bool is_gallery_page(const std::filesystem::path& page);

// Checks that the page may be written at `page`. Throws Error(kInvalidArgument, "out") for a
// symbolic link (even with `force`), a folder, something that is not a regular file, a missing
// parent folder, or an existing file that is not a gallery page unless `force`.
PageTarget check_gallery_output(const std::filesystem::path& page, bool force);

struct GalleryOptions {
  std::filesystem::path root;    // a gen or batch output folder, or one sample folder
  std::filesystem::path scores;  // `anagram score --json` output; empty: no scores
  std::filesystem::path out;     // the page; empty: root/index.html
  std::string title;             // empty: "anagram gallery: <root's name>"
  bool force = false;            // replace an existing file that is not a gallery page
  size_t max_cards = 20000;      // a page of more is too heavy to open; make one per subfolder
};

struct GalleryResult {
  std::filesystem::path page;
  PageTarget target = PageTarget::kNew;
  size_t cards = 0;
  size_t scored = 0;                    // cards that got a score
  size_t scores_unused = 0;             // scored samples without a card, at least
  std::vector<std::string> unreadable;  // one line per sample folder that could not be read
};

// The whole command: checks the page's place, reads the scores file and finds the sample folders
// (each refusal an Error(kInvalidArgument) before anything is written), reads a card per folder
// (unreadable ones are listed, not fatal; none readable: Error(kRuntime)), renders the page and
// writes it atomically. `stop`, when set, interrupts between folders (Error(kInterrupted)).
GalleryResult make_gallery(const GalleryOptions& options, const std::atomic<bool>* stop = nullptr);

}  // namespace anagram
