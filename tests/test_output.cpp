// Output folders: a sample's temporary folder belongs to its writer until it is committed, so
// cleaning up the output folder (which every batch worker does before each sample) never removes
// one being written, by another thread of this process or by another process; folders whose
// writer has ended are removed.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "anagram/core/error.h"
#include "anagram/io/output.h"

namespace {

namespace fs = std::filesystem;

struct OutputTest : ::testing::Test {
  void SetUp() override {
    dir = fs::temp_directory_path() /
          ("anagram_output_" + std::to_string(getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir);
    anagram::prepare_output_dir(dir);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  fs::path dir;
};

TEST_F(OutputTest, AnotherWorkersCleanUpLeavesASampleBeingWritten) {
  anagram::SampleFolder sample(dir, "seed_000001");
  sample.add_file("first.txt", "1");
  // Another worker thread of this process prepares the folder for its own sample.
  std::thread([&] { anagram::prepare_output_dir(dir); }).join();
  EXPECT_NO_THROW(sample.add_file("second.txt", "2"));
  EXPECT_EQ(sample.commit(), dir / "seed_000001");
  EXPECT_TRUE(fs::exists(dir / "seed_000001" / "first.txt"));
  EXPECT_TRUE(fs::exists(dir / "seed_000001" / "second.txt"));
}

TEST_F(OutputTest, ManyWorkersAtOnceLoseNothing) {
  std::vector<std::thread> workers;
  for (int w = 0; w < 4; ++w) {
    workers.emplace_back([this, w] {
      for (int i = 0; i < 25; ++i) {
        anagram::prepare_output_dir(dir);
        char name[32];
        std::snprintf(name, sizeof name, "seed_%06d", w * 100 + i);
        anagram::SampleFolder sample(dir, name);
        for (int f = 0; f < 3; ++f) sample.add_file("f" + std::to_string(f), "bytes");
        sample.commit();
      }
    });
  }
  for (auto& worker : workers) worker.join();
  size_t samples = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    EXPECT_EQ(entry.path().filename().string().rfind("seed_", 0), 0u) << entry.path();
    ++samples;
  }
  EXPECT_EQ(samples, 100u);
}

TEST_F(OutputTest, OnlyFoldersWhoseWriterEndedAreRemoved) {
  const std::string pid = std::to_string(getpid());
  // Left by a writer that has ended: nobody holds its lock.
  fs::create_directories(dir / (".seed_000002.tmp-" + pid + "-0123456789abcdef") / "x");
  // Being written: its lock is held (here by an open file of this process).
  const fs::path held = dir / (".seed_000003.tmp-" + pid + "-fedcba9876543210");
  fs::create_directories(held);
  const int fd = open(held.c_str(), O_RDONLY | O_DIRECTORY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(flock(fd, LOCK_EX), 0);
  // An earlier version's folders: removed once the process is gone, never for this process.
  fs::create_directories(dir / ".seed_000004.tmp-999999999");
  fs::create_directories(dir / (".seed_000005.tmp-" + pid));
  // Not ours at all.
  fs::create_directories(dir / ".seed_000006.tmp-notapid");
  anagram::prepare_output_dir(dir);
  EXPECT_FALSE(fs::exists(dir / (".seed_000002.tmp-" + pid + "-0123456789abcdef")));
  EXPECT_TRUE(fs::exists(held));
  EXPECT_FALSE(fs::exists(dir / ".seed_000004.tmp-999999999"));
  EXPECT_TRUE(fs::exists(dir / (".seed_000005.tmp-" + pid)));
  EXPECT_TRUE(fs::exists(dir / ".seed_000006.tmp-notapid"));
  close(fd);
  anagram::prepare_output_dir(dir);
  EXPECT_FALSE(fs::exists(held)) << "its writer ended (the lock was released)";
}

}  // namespace
