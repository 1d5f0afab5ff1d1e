// anagram: visual anagrams with a text-conditioned pixel diffusion model (DeepFloyd IF).
//
// Exit codes: 0 success; 1 failure while working; 2 bad input (options, views, bundle,
// device, output folder); 130 interrupted.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <iostream>
#include <map>

#include "anagram/core/error.h"
#include "anagram/core/error_text.h"
#include "commands.h"

namespace anagram::cli {
std::atomic<bool> g_interrupted{false};
}

namespace {

void on_signal(int) {
  anagram::cli::g_interrupted = true;
  // A second Ctrl-C ends the program at once.
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
}

void configure_logging(const anagram::cli::GlobalOptions& global) {
  auto logger = spdlog::stderr_color_mt("anagram");
  logger->set_pattern("%^[%l]%$ %v");
  spdlog::set_default_logger(logger);
  spdlog::level::level_enum level = spdlog::level::from_str(global.log_level);
  if (global.quiet && level < spdlog::level::warn) level = spdlog::level::warn;
  spdlog::set_level(level);
}

// The library names request fields ("num_samples", "prompts[1]"); the user typed flags.
std::string flag_of(const std::string& field) {
  static const std::map<std::string, std::string> lists = {{"prompts", "--prompt"},
                                                           {"views", "--view"},
                                                           {"view_args", "--view-arg"},
                                                           {"concepts", "--concept"}};
  const auto bracket = field.find('[');
  const std::string base = field.substr(0, bracket);
  if (const auto it = lists.find(base); it != lists.end()) {
    if (bracket == std::string::npos) return it->second;
    const int index = std::atoi(field.c_str() + bracket + 1);
    return it->second + " " + std::to_string(index + 1);  // "--prompt 2": the second one
  }
  if (field.find('.') != std::string::npos || field.empty()) return field;
  std::string flag = "--" + field;
  for (char& c : flag) c = c == '_' ? '-' : c;
  return flag;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace anagram::cli;
  // Past the file size limit (ulimit -f) a write fails with EFBIG, which the writers report as
  // one line (exit 1) and clean up after, instead of the signal's silent kill.
  std::signal(SIGXFSZ, SIG_IGN);
  CLI::App app{
      "anagram: visual anagrams, pictures that change meaning under a view (rotation, "
      "flip, permutation), made with a pixel diffusion model"};
  app.set_version_flag("--version", std::string("anagram ") + ANAGRAM_VERSION);
  app.require_subcommand(1);
  app.fallthrough();

  GlobalOptions global;
  for (int i = 0; i < argc; ++i) global.command_line += (i ? " " : "") + std::string(argv[i]);
  app.add_option("--log-level", global.log_level, "trace, debug, info, warn, error or off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}))
      ->capture_default_str();
  app.add_flag("-q,--quiet", global.quiet, "No progress display; only warnings and errors");

  Runner gen = add_gen_command(app, global);
  Runner batch = add_batch_command(app, global);
  Runner score = add_score_command(app, global);
  Runner animate = add_animate_command(app, global);
  Runner gallery = add_gallery_command(app, global);
  Runner views = add_views_command(app);
  Runner info = add_info_command(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "anagram: error: " << anagram::quote_for_error(e.what(), 300)
              << " (see anagram --help)\n";
    return 2;
  }
  configure_logging(global);
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);

  // Every exception ends here as one line: the user never sees a LibTorch backtrace.
  try {
    if (app.got_subcommand("gen")) return gen();
    if (app.got_subcommand("batch")) return batch();
    if (app.got_subcommand("score")) return score();
    if (app.got_subcommand("animate")) return animate();
    if (app.got_subcommand("gallery")) return gallery();
    if (app.got_subcommand("views")) return views();
    if (app.got_subcommand("info")) return info();
  } catch (const anagram::Error& e) {
    const std::string where = flag_of(e.field());
    std::cerr << "anagram: error: " << (where.empty() ? "" : where + ": ")
              << anagram::quote_for_error(e.detail(), 500) << "\n";
    return g_interrupted ? 130 : e.exit_code();
  } catch (const std::exception& e) {
    std::cerr << "anagram: error: " << anagram::describe_exception(e) << "\n";
    return g_interrupted ? 130 : 1;
  } catch (...) {
    std::cerr << "anagram: error: unknown failure\n";
    return 1;
  }
  return 2;
}
