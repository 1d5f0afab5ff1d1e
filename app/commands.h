// The subcommands of the `anagram` program. Each registers its options on the CLI11 app and
// returns the function that runs it; the work itself is done by the library.
#pragma once

#include <CLI/CLI.hpp>
#include <atomic>
#include <functional>
#include <string>

#include "anagram/pipeline/session.h"

namespace anagram::cli {

using Runner = std::function<int()>;

// Set by SIGINT/SIGTERM; long-running commands poll it between steps.
extern std::atomic<bool> g_interrupted;

struct GlobalOptions {
  std::string log_level = "info";
  bool quiet = false;
  std::string command_line;
};

// Output files named on the command line are the user's: refuses (Error naming `option`) to
// replace an existing `path` unless `force`.
void refuse_existing_output(const std::string& path, const std::string& option, bool force);

// --bundle, --device, --dtype, --text-device, --embeddings-cache and --threads, bound to
// `session` (gen and batch share them; batch's help speaks of jobs and workers).
enum class SessionOptionsFor { kGen, kBatch };
void add_session_options(CLI::App* cmd, SessionOptions& session, SessionOptionsFor command);

Runner add_gen_command(CLI::App& app, const GlobalOptions& global);
Runner add_batch_command(CLI::App& app, const GlobalOptions& global);
Runner add_score_command(CLI::App& app, const GlobalOptions& global);
Runner add_animate_command(CLI::App& app, const GlobalOptions& global);
Runner add_gallery_command(CLI::App& app, const GlobalOptions& global);
Runner add_views_command(CLI::App& app);
Runner add_info_command(CLI::App& app);

}  // namespace anagram::cli
