// anagram batch JOBS.jsonl: many requests, models loaded once per bundle, resumable, shardable.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "anagram/core/error.h"
#include "anagram/core/error_text.h"
#include "anagram/pipeline/batch.h"
#include "commands.h"

namespace anagram::cli {
namespace {

// --set KEY=JSON (e.g. steps=10, method="baseline"; a bare word is taken as a string).
void apply_setting(nlohmann::json& defaults, const std::string& setting) {
  const auto eq = setting.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw Error(ErrorKind::kInvalidArgument, "set",
                "must be KEY=VALUE, got '" + quote_for_error(setting) + "'");
  }
  const std::string key = setting.substr(0, eq), value = setting.substr(eq + 1);
  try {
    defaults[key] = nlohmann::json::parse(value);
  } catch (const nlohmann::json::exception&) {
    defaults[key] = value;
  }
}

nlohmann::json read_defaults(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorKind::kIo, "defaults", "cannot read '" + path + "'");
  std::ostringstream text;
  text << in.rdbuf();
  if (text.str().size() > (1u << 20)) {
    throw Error(ErrorKind::kInvalidArgument, "defaults", "'" + path + "' is larger than 1 MiB");
  }
  nlohmann::json j = nlohmann::json::parse(text.str(), nullptr, false);
  if (!j.is_object()) {
    throw Error(ErrorKind::kInvalidArgument, "defaults",
                "'" + path + "' must hold one JSON object of request fields");
  }
  return j;
}

struct BatchCommand {
  std::string jobs;
  std::string defaults_file;
  std::vector<std::string> settings;
  std::string out = "batch";
  std::string shard;
  std::string summary;
  bool skip_invalid = false;
  int workers = 1;
  uint64_t max_samples = kMaxBatchSamples;
  SessionOptions session;
};

int run_batch_command(const BatchCommand& o, const GlobalOptions& global) {
  nlohmann::json defaults = nlohmann::json::object();
  if (!o.defaults_file.empty()) defaults = read_defaults(o.defaults_file);
  for (const auto& setting : o.settings) apply_setting(defaults, setting);
  const auto [index, count] = o.shard.empty() ? slurm_shard() : parse_shard(o.shard);
  if (o.out.empty()) throw Error(ErrorKind::kInvalidArgument, "out", "must name a folder");

  // 1. The whole file, before any work.
  const BatchFile file = read_batch_file(o.jobs, defaults, o.max_samples);
  for (const auto& error : file.errors) {
    std::cerr << "anagram: error: " << o.jobs << ": " << quote_for_error(error, 500) << "\n";
  }
  if (!file.errors.empty() && !o.skip_invalid) {
    std::cerr << "anagram: " << file.errors.size()
              << " invalid line(s); nothing was run (--skip-invalid runs the rest)\n";
    return 2;
  }
  const std::vector<BatchSample> samples = shard_samples(file.jobs, o.out, index, count);

  BatchOptions options;
  options.session = o.session;
  options.workers = o.workers;
  options.root = o.out;
  options.summary =
      !o.summary.empty() ? std::filesystem::path(o.summary)
      : count == 1       ? std::filesystem::path(o.out) / "summary.jsonl"
                   : std::filesystem::path(o.out) / ("summary.shard-" + std::to_string(index) +
                                                     "-of-" + std::to_string(count) + ".jsonl");
  BatchCallbacks callbacks;
  callbacks.run.interrupted = &g_interrupted;
  callbacks.run.command_line = global.command_line;
  callbacks.sample_done = [](const std::filesystem::path& dir) {
    std::printf("%s\n", dir.string().c_str());
    std::fflush(stdout);
  };
  const BatchReport report = run_batch(file.jobs, samples, options, callbacks);
  std::fprintf(stderr, "batch: %d done, %d already complete, %d failed (shard %d of %d)\n",
               report.done, report.skipped, report.failed, index, count);
  if (g_interrupted) return 130;
  return report.failed > 0 || !file.errors.empty() ? 1 : 0;
}

}  // namespace

Runner add_batch_command(CLI::App& app, const GlobalOptions& global) {
  auto o = std::make_shared<BatchCommand>();
  CLI::App* cmd = app.add_subcommand(
      "batch", "Run many requests from a JSON Lines file (resumable; shardable over machines)");
  cmd->footer(
      "Each line: a JSON object with the fields of a request (prompts, views, view_args, style,\n"
      "steps, guidance, seed + num_samples or seeds, method, antiseg, balance, rectify, stages,\n"
      "noise_level, ...; see README), plus \"out\" (the job's folder under --out) and \"bundle\".\n"
      "  {\"prompts\": [\"a dog\", \"a cat\"], \"views\": [\"rot180\"], \"seeds\": [0, 1, 2], "
      "\"out\": \"dog-cat\"}\n"
      "Samples go to OUT/<out>/seed_NNNNNN/; complete ones are skipped when the batch is rerun.\n"
      "Every line is checked before any work (line number and field in each error).\n"
      "Exit: 0 all samples done, 1 some failed (see the summary), 2 invalid input, 130 "
      "interrupted.");
  cmd->add_option("jobs", o->jobs, "The JSON Lines file of jobs")->required();
  cmd->add_option("--defaults", o->defaults_file,
                  "A JSON object of request fields every line starts from");
  cmd->add_option("--set", o->settings,
                  "A default field, KEY=VALUE (repeat), e.g. --set steps=10 --set "
                  "method=baseline; overrides --defaults, overridden by the lines");
  cmd->add_option("-o,--out", o->out, "Output folder of the batch")->capture_default_str();
  cmd->add_option("--shard", o->shard,
                  "Run shard I of N (I/N, from 0): sample k belongs to shard k % N (default: "
                  "SLURM_ARRAY_TASK_ID of SLURM_ARRAY_TASK_COUNT when set, else all)");
  cmd->add_option("--summary", o->summary,
                  "Where to append one JSON line per sample (default OUT/summary.jsonl, or "
                  "OUT/summary.shard-I-of-N.jsonl)");
  cmd->add_flag("--skip-invalid", o->skip_invalid, "Run the valid lines even if some are not");
  cmd->add_option("--max-samples", o->max_samples,
                  "Refuse a file that asks for more samples than this (about 100 bytes of "
                  "memory each)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{100'000'000}))
      ->capture_default_str();
  add_session_options(cmd, o->session, SessionOptionsFor::kBatch);
  cmd->add_option("-j,--workers", o->workers,
                  "Samples made at once, sharing the loaded models (CPU: up to one per core; "
                  "GPU: each adds its activations to the memory in use)")
      ->capture_default_str();
  return [o, &global]() { return run_batch_command(*o, global); };
}

}  // namespace anagram::cli
