// The gallery as one call: where the page may go, the sample folders and scores it shows, and
// the page written in one piece. Every check that can refuse runs before anything is written.
#include <fcntl.h>
#include <unistd.h>

#include <cstring>

#include "anagram/core/error.h"
#include "anagram/core/error_text.h"
#include "anagram/eval/gallery.h"
#include "anagram/io/image_io.h"

namespace anagram {
namespace {

namespace fs = std::filesystem;

constexpr size_t kMarkerBytes = 4096;  // the generator line is in the page's first few hundred

[[noreturn]] void refuse(const std::string& field, const std::string& what) {
  throw Error(ErrorKind::kInvalidArgument, field, what);
}

std::string quoted(const fs::path& path) { return "'" + quote_for_error(path.string()) + "'"; }

// The first bytes of `page`, read without following a link; "" when it cannot be opened.
std::string head_of(const fs::path& page) {
  const int fd = ::open(page.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return "";
  std::string bytes(kMarkerBytes, '\0');
  const ssize_t n = ::read(fd, bytes.data(), bytes.size());
  ::close(fd);
  bytes.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return bytes;
}

void check_root(const fs::path& root) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) {
    refuse("", quoted(root) + " is not a folder (give a gen or batch --out)");
  }
}

std::vector<fs::path> sample_folders(const GalleryOptions& options) {
  check_root(options.root);
  std::vector<fs::path> folders = find_sample_folders({options.root});
  if (folders.empty()) {
    refuse("", "no sample folders (with metadata.json) under " + quoted(options.root));
  }
  if (folders.size() > options.max_cards) {
    refuse("", std::to_string(folders.size()) + " samples under " + quoted(options.root) +
                   "; one page shows at most " + std::to_string(options.max_cards) +
                   ": make one per subfolder");
  }
  return folders;
}

}  // namespace

bool is_gallery_page(const fs::path& page) {
  const std::string head = head_of(page);
  if (head.rfind("<!doctype html>", 0) != 0) return false;
  const std::string marker = "<meta name=\"generator\" content=\"anagram ";
  const size_t at = head.find(marker);
  if (at == std::string::npos) return false;
  const size_t end = head.find('\n', at);
  if (end == std::string::npos) return false;
  return head.compare(end - std::strlen(" gallery\">"), std::strlen(" gallery\">"),
                      " gallery\">") == 0;
}

PageTarget check_gallery_output(const fs::path& page, bool force) {
  std::error_code ec;
  const fs::file_status status = fs::symlink_status(page, ec);
  if (fs::is_symlink(status)) {
    refuse("out", quoted(page) + " is a symbolic link; the page is never written through one");
  }
  if (fs::is_directory(status)) refuse("out", quoted(page) + " is a folder; name the page's file");
  const fs::path parent = page.parent_path().empty() ? fs::path(".") : page.parent_path();
  if (!fs::is_directory(parent, ec)) {
    refuse("out", "folder " + quoted(parent) + " does not exist");
  }
  if (!fs::exists(status)) return PageTarget::kNew;
  if (!fs::is_regular_file(status)) refuse("out", quoted(page) + " exists and is not a file");
  if (is_gallery_page(page)) return PageTarget::kOwnPage;
  if (!force) {
    refuse("out", quoted(page) +
                      " exists and is not a page anagram gallery made; pass --force to replace it");
  }
  return PageTarget::kForced;
}

GalleryResult make_gallery(const GalleryOptions& options, const std::atomic<bool>* stop) {
  GalleryResult result;
  result.page = options.out.empty() ? options.root / "index.html" : options.out;
  // 1. Refusals first: the samples' folder, the page's place, the scores file, the samples.
  check_root(options.root);
  result.target = check_gallery_output(result.page, options.force);
  GalleryScores scores;
  if (!options.scores.empty()) scores = read_gallery_scores(options.scores);
  const std::vector<fs::path> folders = sample_folders(options);

  // 2. A card per readable sample; the others are reported, not fatal.
  std::vector<GalleryCard> cards;
  for (const fs::path& folder : folders) {
    if (stop != nullptr && *stop) throw Error(ErrorKind::kInterrupted, "interrupted");
    try {
      cards.push_back(read_gallery_card(folder));
    } catch (const Error& e) {
      result.unreadable.push_back(e.detail());
    }
  }
  if (cards.empty()) throw Error(ErrorKind::kRuntime, "no sample under the folder could be read");
  result.cards = cards.size();

  // 3. Scores, the page, and the page written in one piece.
  if (!options.scores.empty()) {
    result.scored = attach_scores(cards, scores, options.root);
    result.scores_unused = scores.samples.size() - std::min(result.scored, scores.samples.size());
  }
  GalleryPage page;
  page.page_folder = result.page.parent_path().empty() ? fs::path(".") : result.page.parent_path();
  std::error_code ec;
  const fs::path name = fs::weakly_canonical(options.root, ec).filename();
  page.title = options.title.empty() ? "anagram gallery: " + name.string() : options.title;
  page.scores = options.scores.empty() ? nullptr : &scores;
  const std::string html = render_gallery(cards, page);
  check_gallery_output(result.page, options.force);  // again: it may have changed meanwhile
  write_file_atomic(result.page, html);
  return result;
}

}  // namespace anagram
