// anagram/pipeline/batch.h: running a batch file's samples, resumable and shardable.
//
// Basic usage:
//   anagram::BatchFile file = anagram::read_batch_file("jobs.jsonl", defaults);  // batch_file.h
//   auto samples = anagram::shard_samples(file.jobs, "runs", 0, 1);
//   anagram::BatchReport report = anagram::run_batch(file.jobs, samples, options, callbacks);
//
// Each job is planned once, before any model loads (plan.h); each bundle's models load once
// (session.h) and its tokenizer is read once; each sample is generated and written
// (io/sample_writer.h) as its own OUT/<out>/seed_NNNNNN folder.
//
// Resuming: a sample whose folder holds a complete sample (sample_folder_complete) is skipped,
// so a batch killed at any moment reruns to completion with each sample once. A folder of that
// name that is not a complete sample (empty, a link, a file) is the user's: it is reported as
// failed and left alone.
//
// The output folder is the batch's alone: nothing is written through a symbolic link (a job
// folder with a link or a file in its path fails its samples without touching them; a linked
// summary file is refused before any work), and one process at a time appends to a summary,
// so the same shard cannot run twice into one folder at once (shards have their own).
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "anagram/pipeline/batch_file.h"
#include "anagram/pipeline/session.h"

namespace anagram {

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

// Plans every job against its bundle first and checks the output folder, the job folders and
// the summary (throws Error naming the line or the path on a problem, before any model loads),
// then runs the samples not yet complete. A failing sample is reported in the summary and the
// log, and the rest go on; an interrupt stops the run (Error(kInterrupted)) after the samples
// in flight are discarded. With several workers the callbacks are called one at a time, and
// samples finish (and are reported) out of order.
BatchReport run_batch(const std::vector<BatchJob>& jobs, const std::vector<BatchSample>& samples,
                      const BatchOptions& options, const BatchCallbacks& callbacks = {});

}  // namespace anagram
