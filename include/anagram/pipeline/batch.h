// anagram/pipeline/batch.h: many requests from a JSON Lines file, resumable and shardable.
//
// Basic usage:
//   anagram::BatchFile file = anagram::read_batch_file("jobs.jsonl", defaults);
//   if (!file.errors.empty()) ...                     // "line 3: steps: must be in 1..1000"
//   auto samples = anagram::shard(anagram::expand(file.jobs, "runs"), 0, 1);
//   anagram::BatchReport report = anagram::run_batch(file.jobs, samples, options, callbacks);
//
// Each job is planned once, before any model loads (plan.h); each bundle's models load once
// (session.h) and its tokenizer is read once; each sample is generated and written
// (io/sample_writer.h) as its own seed_NNNNNN folder.
//
// Each line is one JSON object: the fields of a GenerateRequest (request.h), plus
//   "out":    the job's folder, relative to the batch's output folder (default "job_<line>");
//   "seeds":  a list of seeds (or "seed" and "num_samples", as in a request);
//   "bundle": the job's bundle (default: the batch's).
// Every sample is identified by its job's folder and its seed: OUT/<out>/seed_<seed>/. A sample
// whose folder exists is complete (folders are renamed into place whole) and is skipped, so a
// batch that was killed at any moment reruns to completion with each sample once.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "anagram/pipeline/request.h"
#include "anagram/pipeline/session.h"

namespace anagram {

struct BatchJob {
  int line = 0;  // 1-based line of the file
  GenerateRequest request;
  std::vector<uint64_t> seeds;
  std::string out;     // relative folder
  std::string bundle;  // "" = the batch's
};

struct BatchFile {
  std::vector<BatchJob> jobs;       // the valid lines
  std::vector<std::string> errors;  // "line N: field: detail", one per invalid line
};

// Reads and checks every line (JSON syntax, keys, types, ranges, the request's own checks,
// duplicate samples). `defaults` holds keys every line starts from (a line's keys win).
// Throws Error(kIo / kInvalidArgument) only for the file itself (unreadable, too large).
BatchFile read_batch_file(const std::filesystem::path& path,
                          const nlohmann::json& defaults = nlohmann::json::object());

struct BatchSample {
  size_t job = 0;  // index into the jobs
  uint64_t seed = 0;
  std::filesystem::path dir;  // OUT/<out>/seed_<seed>
};

// Every (job, seed) in file order, with its folder under `root`.
std::vector<BatchSample> expand(const std::vector<BatchJob>& jobs,
                                const std::filesystem::path& root);
// The deterministic slice `index` of `count` (sample k goes to shard k % count), so a job array
// spreads a batch over machines with no coordinator. Throws Error(kInvalidArgument).
std::vector<BatchSample> shard(const std::vector<BatchSample>& samples, int index, int count);
// "I/N" (0-based I) -> {I, N}; throws Error(kInvalidArgument) naming "shard".
std::pair<int, int> parse_shard(const std::string& text);
// From SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_MIN and SLURM_ARRAY_TASK_COUNT when all are set
// (sbatch --array=0-9 gives shards 0..9 of 10); {0, 1} otherwise.
std::pair<int, int> slurm_shard();

struct BatchOptions {
  SessionOptions session;         // bundle (for jobs without one), device, dtype, ...
  std::filesystem::path root;     // the batch's output folder
  std::filesystem::path summary;  // summary.jsonl: one line per sample, appended
  // Samples made at once on one session (each on its own thread, sharing the loaded models).
  // With more than one and session.threads 0, each sample runs on one CPU thread (threads and
  // BLAS threads 1), so workers = cores uses the CPU without oversubscribing it. A sample's
  // bytes do not depend on the workers, only on the thread counts its metadata records.
  int workers = 1;
  static constexpr int kMaxWorkers = 64;
};

struct BatchCallbacks {
  RunOptions run;  // progress, interrupt flag, command line (shared by every sample)
  // Called as each sample folder is committed (scripts read the paths from stdout as they come).
  std::function<void(const std::filesystem::path& dir)> sample_done;
};

struct BatchReport {
  int done = 0;
  int skipped = 0;  // already complete
  int failed = 0;
};

// Plans every job against its bundle first (throws Error naming the line on a problem), then
// runs the samples not yet complete, each bundle's models loaded once. A failing sample is
// reported in the summary and the log, and the rest go on; an interrupt stops the run
// (Error(kInterrupted)) after the samples in flight are discarded. With several workers the
// callbacks are called one at a time, and samples finish (and are reported) out of order.
BatchReport run_batch(const std::vector<BatchJob>& jobs, const std::vector<BatchSample>& samples,
                      const BatchOptions& options, const BatchCallbacks& callbacks = {});

}  // namespace anagram
