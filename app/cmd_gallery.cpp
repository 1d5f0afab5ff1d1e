// anagram gallery OUT: one static HTML page of the samples under OUT (and their scores).
#include <filesystem>
#include <iostream>
#include <memory>

#include "anagram/core/error.h"
#include "anagram/core/error_text.h"
#include "anagram/eval/gallery.h"
#include "anagram/io/image_io.h"
#include "commands.h"

namespace anagram::cli {
namespace {

namespace fs = std::filesystem;

constexpr size_t kMaxCards = 20000;  // a page of more is too heavy to open; pass a subfolder

// The page's file: not a folder, not an existing file unless --force, in a folder that exists.
void check_page_path(const fs::path& page, bool force) {
  std::error_code ec;
  if (fs::is_directory(page, ec)) {
    throw Error(ErrorKind::kInvalidArgument, "out",
                "'" + quote_for_error(page.string()) + "' is a folder; name the page's file");
  }
  refuse_existing_output(page.string(), "out", force);
  const fs::path parent = page.parent_path().empty() ? fs::path(".") : page.parent_path();
  if (!fs::is_directory(parent, ec)) {
    throw Error(ErrorKind::kInvalidArgument, "out",
                "folder '" + quote_for_error(parent.string()) + "' does not exist");
  }
}

std::vector<fs::path> sample_folders(const std::string& root) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) {
    throw Error(ErrorKind::kInvalidArgument,
                "'" + quote_for_error(root) + "' is not a folder (give a gen or batch --out)");
  }
  std::vector<fs::path> folders = find_sample_folders({fs::path(root)});
  if (folders.empty()) {
    throw Error(ErrorKind::kInvalidArgument,
                "no sample folders (with metadata.json) under '" + quote_for_error(root) + "'");
  }
  if (folders.size() > kMaxCards) {
    throw Error(ErrorKind::kInvalidArgument,
                std::to_string(folders.size()) + " samples under '" + quote_for_error(root) +
                    "'; one page shows at most " + std::to_string(kMaxCards) +
                    ": make one per subfolder");
  }
  return folders;
}

void report_matches(size_t matched, size_t cards, const GalleryScores& scores) {
  if (matched < cards) {
    std::cerr << "anagram: warning: " << cards - matched << " of " << cards
              << " samples have no score in the scores file (shown as not scored)\n";
  }
  if (matched < scores.samples.size()) {
    std::cerr << "anagram: warning: " << scores.samples.size() - matched << " of "
              << scores.samples.size() << " scored samples are not in the gallery\n";
  }
}

}  // namespace

Runner add_gallery_command(CLI::App& app, const GlobalOptions& global) {
  struct Options {
    std::string root;
    std::string scores;
    std::string out;
    std::string title;
    bool force = false;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(
      "gallery", "Write one static HTML page of finished samples, with their scores");
  cmd->footer(
      "One card per sample folder under OUT (sheet, animation, prompts, views, method, seed,\n"
      "scores), grouped by prompts and method, sortable by alignment or concealment, with the\n"
      "per-method summary of --scores as a plot. The page needs no server and no network;\n"
      "pictures are linked relative to it, so OUT can be copied or served as it is.\n"
      "Exit: 0 every sample shown, 1 some could not be read (each named), 2 invalid input.");
  cmd->add_option("OUT", o->root, "A gen or batch output folder (or one sample folder)")
      ->required();
  cmd->add_option("--scores", o->scores, "Scores of the samples: `anagram score --json` output");
  cmd->add_option("--out", o->out, "The page (default OUT/index.html)");
  cmd->add_option("--title", o->title, "The page's title (default: anagram gallery: OUT)");
  cmd->add_flag("--force", o->force, "Replace an existing page");

  return [o, &global]() {
    const fs::path page = o->out.empty() ? fs::path(o->root) / "index.html" : fs::path(o->out);
    check_page_path(page, o->force);
    GalleryScores scores;
    if (!o->scores.empty()) scores = read_gallery_scores(o->scores);
    const std::vector<fs::path> folders = sample_folders(o->root);

    std::vector<GalleryCard> cards;
    int failed = 0;
    for (size_t i = 0; i < folders.size() && !g_interrupted; ++i) {
      try {
        cards.push_back(read_gallery_card(folders[i]));
      } catch (const Error& e) {
        ++failed;
        std::cerr << "anagram: error: " << quote_for_error(e.detail(), 500) << "\n";
      }
    }
    if (g_interrupted) return 130;
    if (cards.empty()) {
      std::cerr << "anagram: error: no sample could be read\n";
      return 1;
    }
    if (!o->scores.empty())
      report_matches(attach_scores(cards, scores, o->root), cards.size(), scores);
    GalleryPage options;
    options.page_folder = page.parent_path().empty() ? fs::path(".") : page.parent_path();
    std::error_code ec;
    const fs::path name = fs::weakly_canonical(o->root, ec).filename();
    options.title = o->title.empty() ? "anagram gallery: " + name.string() : o->title;
    options.scores = o->scores.empty() ? nullptr : &scores;
    write_file_atomic(page, render_gallery(cards, options));
    if (!global.quiet) {
      std::cerr << "gallery: " << cards.size() << " samples"
                << (failed ? ", " + std::to_string(failed) + " unreadable" : "") << "\n";
    }
    std::cout << page.string() << "\n";
    return failed > 0 ? 1 : 0;
  };
}

}  // namespace anagram::cli
