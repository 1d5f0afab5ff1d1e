// Batch files: every line checked with its line number and field, defaults, seeds, duplicate
// samples, and the deterministic shards.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "anagram/core/error.h"
#include "anagram/pipeline/batch.h"

namespace {

namespace fs = std::filesystem;

fs::path write_jobs(const std::string& name, const std::string& text) {
  const fs::path path =
      fs::temp_directory_path() / ("anagram_batch_" + std::to_string(getpid()) + "_" + name);
  std::ofstream(path) << text;
  return path;
}

TEST(Batch, ReadsJobsWithDefaultsAndSeeds) {
  const fs::path path = write_jobs(
      "ok.jsonl",
      R"({"prompts": ["a dog", "a cat"], "views": ["rot180"], "seeds": [3, 5], "out": "dc"}

{"prompts": ["a"], "seed": 10, "num_samples": 3, "steps": 7}
)");
  const anagram::BatchFile file = anagram::read_batch_file(path, {{"steps", 4}, {"stages", 1}});
  ASSERT_TRUE(file.errors.empty()) << file.errors.at(0);
  ASSERT_EQ(file.jobs.size(), 2u);
  EXPECT_EQ(file.jobs[0].line, 1);
  EXPECT_EQ(file.jobs[0].seeds, (std::vector<uint64_t>{3, 5}));
  EXPECT_EQ(file.jobs[0].request.steps, 4);  // from the defaults
  EXPECT_EQ(file.jobs[1].line, 3);           // the blank line counts
  EXPECT_EQ(file.jobs[1].out, "job_3");
  EXPECT_EQ(file.jobs[1].seeds, (std::vector<uint64_t>{10, 11, 12}));
  EXPECT_EQ(file.jobs[1].request.steps, 7);  // the line wins
  const auto samples = anagram::expand(file.jobs, "runs");
  ASSERT_EQ(samples.size(), 5u);
  EXPECT_EQ(samples[0].dir, fs::path("runs/dc/seed_000003"));
  EXPECT_EQ(samples[4].dir, fs::path("runs/job_3/seed_000012"));
  fs::remove(path);
}

TEST(Batch, EveryBadLineIsReportedWithItsNumberAndField) {
  const fs::path path = write_jobs("bad.jsonl", R"({"prompts": ["a"]}
{"prompts": ["a"], "steps": 0}
not json
{"prompts": ["a"], "stesp": 3}
{"prompts": ["a"], "out": "../elsewhere"}
{"prompts": ["a"], "seeds": [1, -2]}
{"prompts": ["a"], "seeds": [1], "seed": 4}
[1, 2]
{"prompts": ["a"], "views": ["nonsense"]}
{"prompts": ["b"], "seeds": [0], "out": "job_1"}
)");
  const anagram::BatchFile file = anagram::read_batch_file(path);
  EXPECT_EQ(file.jobs.size(), 1u);
  const std::vector<std::string> expected = {"line 2: steps:",
                                             "line 3: the line is not valid JSON",
                                             "line 4: unknown key 'stesp'",
                                             "line 5: out:",
                                             "line 6: seeds[1]:",
                                             "line 7: seeds:",
                                             "line 8:",
                                             "line 9: views[0]:",
                                             "line 10: seeds: sample seed_000000"};
  ASSERT_EQ(file.errors.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(file.errors[i].rfind(expected[i], 0), 0u) << file.errors[i];
    EXPECT_EQ(file.errors[i].find('\n'), std::string::npos);
  }
  fs::remove(path);
}

TEST(Batch, ShardsPartitionTheSamples) {
  std::vector<anagram::BatchSample> all;
  for (uint64_t seed = 0; seed < 23; ++seed) all.push_back({0, seed, std::to_string(seed)});
  std::multiset<uint64_t> seen;
  for (int i = 0; i < 4; ++i) {
    for (const auto& s : anagram::shard(all, i, 4)) seen.insert(s.seed);
  }
  EXPECT_EQ(seen.size(), all.size());
  EXPECT_EQ(std::set<uint64_t>(seen.begin(), seen.end()).size(), all.size());
  EXPECT_EQ(anagram::shard(all, 1, 4).front().seed, 1u);
  EXPECT_EQ(anagram::parse_shard("2/5"), std::make_pair(2, 5));
  for (const char* bad : {"5/5", "-1/2", "1", "a/b", "1/0", ""}) {
    EXPECT_THROW(anagram::parse_shard(bad), anagram::Error) << bad;
  }
  setenv("SLURM_ARRAY_TASK_ID", "7", 1);
  setenv("SLURM_ARRAY_TASK_MIN", "5", 1);
  setenv("SLURM_ARRAY_TASK_COUNT", "4", 1);
  EXPECT_EQ(anagram::slurm_shard(), std::make_pair(2, 4));
  unsetenv("SLURM_ARRAY_TASK_ID");
  EXPECT_EQ(anagram::slurm_shard(), std::make_pair(0, 1));
}

TEST(Batch, WorkerCountOutsideItsRangeIsRefusedBeforeAnyWork) {
  const fs::path root =
      fs::temp_directory_path() / ("anagram_batch_workers_" + std::to_string(getpid()));
  const anagram::BatchFile file =
      anagram::read_batch_file(write_jobs("workers.jsonl", R"({"prompts": ["a"], "out": "w"})"));
  ASSERT_TRUE(file.errors.empty());
  for (int workers : {0, -1, anagram::BatchOptions::kMaxWorkers + 1}) {
    anagram::BatchOptions options;
    options.workers = workers;
    options.root = root;
    options.summary = root / "summary.jsonl";
    try {
      anagram::run_batch(file.jobs, anagram::expand(file.jobs, root), options);
      ADD_FAILURE() << "workers " << workers << " accepted";
    } catch (const anagram::Error& e) {
      EXPECT_EQ(e.kind(), anagram::ErrorKind::kInvalidArgument);
      EXPECT_EQ(e.field(), "workers");
    }
    EXPECT_FALSE(fs::exists(root)) << "workers " << workers;
  }
}

}  // namespace
