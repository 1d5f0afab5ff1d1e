// anagram gallery OUT: one static HTML page of the samples under OUT (and their scores). The
// work, and every check, is make_gallery's (src/eval/gallery_write.cpp).
#include <iostream>
#include <memory>

#include "anagram/core/error_text.h"
#include "anagram/eval/gallery.h"
#include "commands.h"

namespace anagram::cli {
namespace {

void report(const GalleryResult& made, bool scores, bool quiet) {
  for (const std::string& line : made.unreadable) {
    std::cerr << "anagram: error: " << quote_for_error(line, 500) << "\n";
  }
  if (scores && made.scored < made.cards) {
    std::cerr << "anagram: warning: " << made.cards - made.scored << " of " << made.cards
              << " samples have no score in the scores file (shown as not scored)\n";
  }
  if (scores && made.scores_unused > 0) {
    std::cerr << "anagram: warning: " << made.scores_unused
              << " scored samples are not in the gallery\n";
  }
  if (!quiet) {
    std::cerr << "gallery: " << made.cards << " samples"
              << (made.unreadable.empty()
                      ? ""
                      : ", " + std::to_string(made.unreadable.size()) + " unreadable")
              << (made.target == PageTarget::kOwnPage ? " (the earlier page replaced)" : "")
              << "\n";
  }
}

}  // namespace

Runner add_gallery_command(CLI::App& app, const GlobalOptions& global) {
  auto o = std::make_shared<GalleryOptions>();
  CLI::App* cmd = app.add_subcommand(
      "gallery", "Write one static HTML page of finished samples, with their scores");
  cmd->footer(
      "One card per sample folder under OUT (sheet, animation, prompts, views, method, seed,\n"
      "scores), grouped by prompts and method, sortable by alignment or concealment, with the\n"
      "per-method summary of --scores as a plot. The page needs no server and no network;\n"
      "pictures are linked relative to it, so OUT can be copied or served as it is. A page that\n"
      "gallery made is replaced; any other existing file only with --force; never a link.\n"
      "Exit: 0 every sample shown, 1 some could not be read (each named), 2 invalid input.");
  cmd->add_option("OUT", o->root, "A gen or batch output folder (or one sample folder)")
      ->required();
  cmd->add_option("--scores", o->scores, "Scores of the samples: `anagram score --json` output");
  cmd->add_option("--out", o->out, "The page (default OUT/index.html)");
  cmd->add_option("--title", o->title, "The page's title (default: anagram gallery: OUT)");
  cmd->add_flag("--force", o->force, "Replace an existing file that is not a gallery page");

  return [o, &global]() {
    const GalleryResult made = make_gallery(*o, &g_interrupted);
    report(made, !o->scores.empty(), global.quiet);
    std::cout << made.page.string() << "\n";
    return made.unreadable.empty() ? 0 : 1;
  };
}

}  // namespace anagram::cli
