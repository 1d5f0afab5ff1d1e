// anagram score PATH...: the papers' alignment and concealment scores of finished samples.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>

#include "anagram/core/device.h"
#include "anagram/core/error.h"
#include "anagram/core/error_text.h"
#include "anagram/eval/score.h"
#include "anagram/io/image_io.h"
#include "commands.h"

namespace anagram::cli {
namespace {

namespace fs = std::filesystem;

void write_output(const std::string& path, const std::string& text) {
  if (!path.empty()) write_file_atomic(path, text);
}

struct ScoreOptions {
  std::vector<std::string> paths;
  std::string scorer;
  std::string device = "cpu";
  int size = 0;
  std::string csv, summary_csv, json;
  int select = 0;
  int resamples = 1000;
  bool force = false;
};

int run_score(const ScoreOptions& o, const GlobalOptions& global) {
  if (o.scorer.empty()) {
    throw Error(ErrorKind::kInvalidArgument, "scorer",
                "no scorer given: export one with scripts/export/export_clip_scorer.py and pass "
                "--scorer DIR (or set ANAGRAM_SCORER)");
  }
  refuse_existing_output(o.csv, "csv", o.force);
  refuse_existing_output(o.summary_csv, "summary-csv", o.force);
  refuse_existing_output(o.json, "json", o.force);
  std::vector<fs::path> roots(o.paths.begin(), o.paths.end());
  const std::vector<fs::path> folders = find_sample_folders(roots);
  if (folders.empty()) {
    throw Error(ErrorKind::kInvalidArgument, "no sample folders (with metadata.json) found");
  }
  const c10::Device device = parse_device(o.device);
  const ClipScorer scorer = ClipScorer::load(o.scorer, device);

  std::vector<ScoredSample> samples;
  int failed = 0;
  for (size_t i = 0; i < folders.size() && !g_interrupted; ++i) {
    try {
      samples.push_back(score_sample_folder(scorer, folders[i], o.size));
    } catch (const Error& e) {
      ++failed;
      std::cerr << "anagram: error: " << quote_for_error(e.detail(), 500) << "\n";
    }
    if (!global.quiet) {
      std::fprintf(stderr, "\rscored %zu/%zu", i + 1, folders.size());
      if (i + 1 == folders.size()) std::fprintf(stderr, "\n");
    }
  }
  if (g_interrupted) return 130;
  if (samples.empty()) {
    std::cerr << "anagram: error: no sample could be scored\n";
    return 1;
  }
  if (o.select > 0) select_best(samples, static_cast<size_t>(o.select));
  const std::vector<GroupSummary> summary = summarize_scores(samples, o.resamples, 0);
  write_output(o.csv, samples_csv(samples));
  write_output(o.summary_csv, summary_csv(summary));
  if (!o.json.empty())
    write_output(o.json, scores_json(samples, summary, scorer.manifest()).dump(2) + "\n");
  const std::string table = summary_table(summary);
  if (o.select > 0) {
    std::fputs(table.c_str(), stderr);
    for (const auto& s : samples) {
      if (s.selected) std::printf("%s\n", s.folder.string().c_str());
    }
  } else {
    std::fputs(table.c_str(), stdout);
  }
  return failed > 0 ? 1 : 0;
}

}  // namespace

void refuse_existing_output(const std::string& path, const std::string& option, bool force) {
  std::error_code ec;
  if (!path.empty() && !force && fs::exists(path, ec)) {
    throw Error(ErrorKind::kInvalidArgument, option,
                "'" + quote_for_error(path) + "' exists; pass --force to replace it");
  }
}

Runner add_score_command(CLI::App& app, const GlobalOptions& global) {
  auto o = std::make_shared<ScoreOptions>();
  if (const char* env = std::getenv("ANAGRAM_SCORER"); env && *env) o->scorer = env;
  CLI::App* cmd = app.add_subcommand(
      "score", "Score finished samples with CLIP: alignment and concealment, per method");
  cmd->footer(
      "S_ij = cosine(CLIP image of view i's picture, CLIP text of prompt j);\n"
      "alignment A = min_i S_ii; concealment C = mean_i softmax_j(S_ij * logit_scale) at j = i.\n"
      "The table gives, per method, the mean and 0.9 quantile of A and C over the samples with\n"
      "95% bootstrap intervals (docs/scorer.md). Scorers: scripts/export/export_clip_scorer.py.\n"
      "Exit: 0 every sample scored, 1 some could not be, 2 invalid input.");
  cmd->add_option("paths", o->paths, "Sample folders, or folders holding them (gen/batch --out)")
      ->required();
  cmd->add_option("--scorer", o->scorer,
                  "Scorer folder (default $ANAGRAM_SCORER); models/tiny-clip-scorer has random "
                  "weights, for tests only");
  cmd->add_option("--size", o->size,
                  "Which stage's picture: its side (64, 256, 1024); 0 = the last")
      ->capture_default_str();
  cmd->add_option("--csv", o->csv, "Write one row per sample here");
  cmd->add_option("--summary-csv", o->summary_csv, "Write one row per method here");
  cmd->add_option("--json", o->json, "Write every score and the summary here");
  cmd->add_option("--select", o->select,
                  "Mark the best K samples of each prompt/view/method set (highest alignment) "
                  "and print their folders on stdout (the table goes to stderr)")
      ->check(CLI::Range(0, 1000000));
  cmd->add_option("--resamples", o->resamples, "Bootstrap resamples")
      ->check(CLI::Range(10, 1000000))
      ->capture_default_str();
  cmd->add_option("-d,--device", o->device, "cpu, cuda or cuda:N")->capture_default_str();
  cmd->add_flag("--force", o->force, "Replace existing --csv/--summary-csv/--json files");

  return [o, &global]() { return run_score(*o, global); };
}

}  // namespace anagram::cli
