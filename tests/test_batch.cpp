// Batch files: every line checked with its line number and field, defaults, seeds, duplicate
// samples, and the deterministic shards.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "anagram/core/error.h"
#include "anagram/io/sample_writer.h"
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
  const auto samples = anagram::shard_samples(file.jobs, "runs");
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
  std::vector<anagram::BatchJob> jobs(2);
  jobs[0].out = "a";
  jobs[1].out = "b";
  for (uint64_t seed = 0; seed < 23; ++seed) jobs[seed % 2].seeds.push_back(seed);
  const auto all = anagram::shard_samples(jobs, "root");
  ASSERT_EQ(all.size(), 23u);
  std::multiset<std::string> seen;
  for (int i = 0; i < 4; ++i) {
    for (const auto& s : anagram::shard_samples(jobs, "root", i, 4)) seen.insert(s.dir.string());
  }
  EXPECT_EQ(seen.size(), all.size());
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), all.size());
  EXPECT_EQ(anagram::shard_samples(jobs, "root", 1, 4).front().dir, all[1].dir);
  EXPECT_THROW(anagram::shard_samples(jobs, "root", 4, 4), anagram::Error);
  EXPECT_EQ(anagram::parse_shard("2/5"), std::make_pair(2, 5));
  for (const char* bad : {"5/5", "-1/2", "1", "a/b", "1/0", ""}) {
    EXPECT_THROW(anagram::parse_shard(bad), anagram::Error) << bad;
  }
  setenv("SLURM_ARRAY_TASK_ID", "7", 1);
  setenv("SLURM_ARRAY_TASK_MIN", "5", 1);
  setenv("SLURM_ARRAY_TASK_COUNT", "4", 1);
  EXPECT_EQ(anagram::slurm_shard(), std::make_pair(2, 4));
  setenv("SLURM_ARRAY_TASK_ID", "abc", 1);  // not silently shard 0
  EXPECT_THROW(anagram::slurm_shard(), anagram::Error);
  setenv("SLURM_ARRAY_TASK_ID", "7", 1);
  setenv("SLURM_ARRAY_TASK_COUNT", "4x", 1);
  EXPECT_THROW(anagram::slurm_shard(), anagram::Error);
  unsetenv("SLURM_ARRAY_TASK_ID");
  unsetenv("SLURM_ARRAY_TASK_COUNT");
  unsetenv("SLURM_ARRAY_TASK_MIN");
  EXPECT_EQ(anagram::slurm_shard(), std::make_pair(0, 1));
}

// "a", "./a" and "a/" are one job folder; control characters and paths that leave the output
// folder are refused with the line.
TEST(Batch, JobFoldersAreNormalisedAndChecked) {
  const fs::path path = write_jobs("folders.jsonl", R"({"prompts": ["a"], "out": "a"}
{"prompts": ["a"], "out": "./a"}
{"prompts": ["a"], "out": "a/"}
{"prompts": ["a"], "out": "x\ny"}
{"prompts": ["a"], "out": "x\u0000y"}
{"prompts": ["a"], "out": "a/../../b"}
{"prompts": ["a"], "out": "/abs"}
{"prompts": ["a"], "out": "."}
{"prompts": ["a"], "out": "deep/er/", "seeds": [4]}
)");
  const anagram::BatchFile file = anagram::read_batch_file(path);
  ASSERT_EQ(file.jobs.size(), 2u);
  EXPECT_EQ(file.jobs[0].out, "a");
  EXPECT_EQ(file.jobs[1].out, "deep/er");
  const std::vector<std::string> expected = {
      "line 2: seeds: sample seed_000000 of 'a' is also made by line 1",
      "line 3: seeds: sample seed_000000 of 'a' is also made by line 1",
      "line 4: out: must not hold control characters",
      "line 5: out: must not hold control characters",
      "line 6: out: must not leave",
      "line 7: out: must be a folder relative",
      "line 8: out: must be a folder relative"};
  ASSERT_EQ(file.errors.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(file.errors[i].rfind(expected[i], 0), 0u) << file.errors[i];
  }
  fs::remove(path);
}

// A file that asks for more samples than the budget is refused line by line before the seeds
// are made: 20,000 lines of 100,000 samples would be 2e9 seeds.
TEST(Batch, TheSampleBudgetIsCheckedBeforeSeedsAreMade) {
  std::string text;
  for (int i = 0; i < 20000; ++i) {
    text += R"({"prompts": ["a"], "num_samples": 100000, "out": "j)" + std::to_string(i) + "\"}\n";
  }
  const fs::path path = write_jobs("huge.jsonl", text);
  const anagram::BatchFile file = anagram::read_batch_file(path, nlohmann::json::object(), 250000);
  EXPECT_EQ(file.jobs.size(), 2u);  // 200,000 samples; the third line would pass 250,000
  ASSERT_EQ(file.errors.size(), 19998u);
  EXPECT_NE(file.errors[0].find("more than its limit"), std::string::npos) << file.errors[0];
  EXPECT_EQ(anagram::shard_samples(file.jobs, "r", 3, 4).size(), 50000u);
  fs::remove(path);
}

// What a batch counts as already made: only a real folder whose metadata names files that are
// all there. An empty folder, a link to a sample, or one with a file missing is not.
TEST(Batch, ASampleFolderIsCompleteOnlyWithEveryFileItsMetadataNames) {
  const fs::path root =
      fs::temp_directory_path() / ("anagram_batch_complete_" + std::to_string(getpid()));
  fs::remove_all(root);
  const fs::path good = root / "seed_000001";
  fs::create_directories(good);
  std::ofstream(good / "metadata.json")
      << R"({"files": [{"anagram": "anagram.png", "sheet": "sheet.png", "views": ["v.png"]}]})";
  for (const char* name : {"anagram.png", "sheet.png", "v.png"}) std::ofstream(good / name) << "x";
  EXPECT_TRUE(anagram::sample_folder_complete(good));
  fs::create_directories(root / "empty");
  EXPECT_FALSE(anagram::sample_folder_complete(root / "empty"));
  fs::create_directory_symlink(good, root / "link");
  EXPECT_FALSE(anagram::sample_folder_complete(root / "link"));
  EXPECT_FALSE(anagram::sample_folder_complete(root / "missing"));
  fs::remove(good / "v.png");
  EXPECT_FALSE(anagram::sample_folder_complete(good));
  std::ofstream(good / "v.png") << "x";
  std::ofstream(good / "metadata.json") << "{not json";
  EXPECT_FALSE(anagram::sample_folder_complete(good));
  fs::remove_all(root);
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
      anagram::run_batch(file.jobs, anagram::shard_samples(file.jobs, root), options);
      ADD_FAILURE() << "workers " << workers << " accepted";
    } catch (const anagram::Error& e) {
      EXPECT_EQ(e.kind(), anagram::ErrorKind::kInvalidArgument);
      EXPECT_EQ(e.field(), "workers");
    }
    EXPECT_FALSE(fs::exists(root)) << "workers " << workers;
  }
}

}  // namespace
