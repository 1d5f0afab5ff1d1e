// anagram/pipeline/batch_file.h: a JSON Lines file of requests, read and checked whole, and
// the deterministic shard of its samples one process runs.
//
// Basic usage:
//   anagram::BatchFile file = anagram::read_batch_file("jobs.jsonl", defaults);
//   if (!file.errors.empty()) ...                     // "line 3: steps: must be in 1..1000"
//   auto [index, count] = anagram::slurm_shard();     // or parse_shard("0/4")
//   auto samples = anagram::shard_samples(file.jobs, "runs", index, count);
//
// Each line is one JSON object: the fields of a GenerateRequest (request.h), plus
//   "out":    the job's folder, relative to the batch's output folder (default "job_<line>");
//   "seeds":  a list of seeds (or "seed" and "num_samples", as in a request);
//   "bundle": the job's bundle (default: the batch's).
// Every sample is identified by its job's folder and its seed: OUT/<out>/seed_<seed>/.
//
// The file is untrusted and bounded: at most 64 MiB, 100,000 lines of at most 1 MiB, and
// `max_samples` samples in all (kMaxBatchSamples unless the caller says otherwise; about 100
// bytes of memory each), checked before a job's seeds are made. A shard holds only its own
// samples.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "anagram/pipeline/request.h"

namespace anagram {

inline constexpr uint64_t kMaxBatchSamples = 1'000'000;

struct BatchJob {
  int line = 0;  // 1-based line of the file
  GenerateRequest request;
  std::vector<uint64_t> seeds;
  std::string out;     // relative folder, normalised ("a", "./a" and "a/" are all "a")
  std::string bundle;  // "" = the batch's
};

struct BatchFile {
  std::vector<BatchJob> jobs;       // the valid lines
  std::vector<std::string> errors;  // "line N: field: detail", one per invalid line
};

// Reads and checks every line (JSON syntax, keys, types, ranges, the request's own checks,
// job folders, duplicate samples, the sample budget). `defaults` holds keys every line starts
// from (a line's keys win). Throws Error(kIo / kInvalidArgument) only for the file itself
// (unreadable, too large).
BatchFile read_batch_file(const std::filesystem::path& path,
                          const nlohmann::json& defaults = nlohmann::json::object(),
                          uint64_t max_samples = kMaxBatchSamples);

struct BatchSample {
  size_t job = 0;  // index into the jobs
  uint64_t seed = 0;
  std::filesystem::path dir;  // OUT/<out>/seed_<seed>
};

// Shard `index` of `count` of every (job, seed) in file order: sample k goes to shard
// k % count, so a job array spreads a batch over machines with no coordinator. Only the
// shard's samples are made. Throws Error(kInvalidArgument) for a shard outside 0 <= I < N.
std::vector<BatchSample> shard_samples(const std::vector<BatchJob>& jobs,
                                       const std::filesystem::path& root, int index = 0,
                                       int count = 1);
// "I/N" (0-based I) -> {I, N}; throws Error(kInvalidArgument) naming "shard".
std::pair<int, int> parse_shard(const std::string& text);
// From SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_MIN and SLURM_ARRAY_TASK_COUNT when ID and COUNT
// are set (sbatch --array=0-9 gives shards 0..9 of 10); {0, 1} otherwise. Values that are not
// whole numbers are refused (Error naming "shard"), never read as 0.
std::pair<int, int> slurm_shard();

// The folder name of a seed's sample: seed_000042.
std::string seed_folder(uint64_t seed);

}  // namespace anagram
