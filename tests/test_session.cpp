// The session end to end on the tiny bundle: each of the method's techniques changes the
// picture, metadata.json records what a researcher needs to plot them and reproduces the
// picture byte for byte, one prompt works, and nothing already in the output folder is lost.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "anagram/core/error.h"
#include "anagram/core/threads.h"
#include "anagram/io/image_io.h"
#include "anagram/io/output.h"
#include "anagram/io/sample_writer.h"
#include "anagram/pipeline/session.h"

namespace {

namespace fs = std::filesystem;

std::string read(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

struct SessionTest : ::testing::Test {
  static void SetUpTestSuite() {
    anagram::SessionOptions options;
    options.bundle = ANAGRAM_DEFAULT_BUNDLE;
    session_ = anagram::Session::open(options).release();
  }
  static void TearDownTestSuite() { delete session_; }

  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("anagram_session_test_" + std::to_string(getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_, ec_);
  }
  void TearDown() override { fs::remove_all(root_, ec_); }

  static anagram::GenerateRequest request() {
    anagram::GenerateRequest r;
    r.prompts = {"a photo of a dog", "a photo of a cat"};
    r.views = {"rot180"};
    r.steps = 3;
    r.stages = 1;
    return r;
  }
  // Runs into root_/name and returns the sample folder.
  fs::path run(const anagram::GenerateRequest& r, const std::string& name) const {
    const fs::path out = root_ / name;
    anagram::prepare_output_dir(out);
    return anagram::write_sample(out, session_->generate(r));
  }
  // {anagram.png bytes, metadata.json}
  std::pair<std::string, nlohmann::json> run_files(const anagram::GenerateRequest& r,
                                                   const std::string& name) const {
    const fs::path dir = run(r, name);
    return {read(dir / "anagram.png"), nlohmann::json::parse(read(dir / "metadata.json"))};
  }

  static anagram::Session* session_;
  fs::path root_;
  std::error_code ec_;
};
anagram::Session* SessionTest::session_ = nullptr;

TEST_F(SessionTest, EachTechniqueChangesThePicture) {
  const auto [full, meta] = run_files(request(), "full");
  auto baseline = request();
  baseline.method = anagram::Method::kBaseline;
  auto no_antiseg = request();
  no_antiseg.antiseg = false;
  auto no_balance = request();
  no_balance.mtl.balance = false;
  auto no_rectify = request();
  no_rectify.mtl.rectify = false;
  int i = 0;
  for (const auto* variant : {&baseline, &no_antiseg, &no_balance, &no_rectify}) {
    EXPECT_NE(run_files(*variant, "variant" + std::to_string(i++)).first, full) << i;
  }

  // What the method did, per step, for plotting.
  const auto& stage = meta.at("stages").at(0);
  const auto& per_step = stage.at("per_step");
  EXPECT_EQ(per_step.at("weights").size(), 3u);
  EXPECT_EQ(per_step.at("scales").size(), 3u);
  EXPECT_EQ(per_step.at("clip_scores").size(), 3u);
  // 26 of 30 scaled to 3 steps is 3, but the last step has no next timestep to optimise for.
  EXPECT_EQ(per_step.at("antiseg_losses").size(), 2u);
  EXPECT_NE(per_step.at("scales")[0].get<double>(), 1.0);
  EXPECT_EQ(meta.at("method").at("name"), "mtl");
  EXPECT_EQ(stage.at("antiseg_target"), 0.45);
  EXPECT_EQ(meta.at("request").at("seed"), 0);
  EXPECT_EQ(meta.at("program").at("intra_op_threads").get<int>(), at::get_num_threads());
  EXPECT_EQ(meta.at("program").at("blas_threads").get<int>(), anagram::cpu_threads().blas);
}

// Both pools that decide a seed's bytes are set by one call and read back as set (the BLAS pool
// only where the BLAS has one: OpenBLAS here).
TEST(CpuThreads, SetsLibTorchsAndTheBlasPool) {
  const anagram::CpuThreads before = anagram::cpu_threads();
  for (int n : {2, 1}) {
    anagram::set_cpu_threads(n, n);
    const anagram::CpuThreads now = anagram::cpu_threads();
    EXPECT_EQ(now.intra_op, n);
    if (before.blas != 0) EXPECT_EQ(now.blas, n);
  }
  anagram::set_cpu_threads(0, 0);  // 0 leaves both as they are
  EXPECT_EQ(anagram::cpu_threads().intra_op, 1);
  anagram::set_cpu_threads(before.intra_op, before.blas);
}

TEST_F(SessionTest, BaselineRecordsEqualWeightsAndUnitScale) {
  auto r = request();
  r.method = anagram::Method::kBaseline;
  const auto meta = run_files(r, "baseline").second;
  const auto& per_step = meta.at("stages").at(0).at("per_step");
  for (const auto& w : per_step.at("weights")) EXPECT_EQ(w, nlohmann::json({0.5, 0.5}));
  for (const auto& c : per_step.at("scales")) EXPECT_EQ(c, 1.0);
  EXPECT_FALSE(per_step.contains("antiseg_losses"));
}

TEST_F(SessionTest, SaveAttentionWritesAMapPerTaskAndStep) {
  auto r = request();
  r.save_attention = true;
  const auto dir = run(r, "attention");
  for (int step = 0; step < 3; ++step) {
    char name[80];
    std::snprintf(name, sizeof name, "attention_step%02d_1_rotate_180_a-photo-of-a-cat.png", step);
    EXPECT_TRUE(fs::exists(dir / name)) << name;
  }
}

TEST_F(SessionTest, BadMethodInputFailsInThePlan) {
  auto r = request();
  r.concepts = {"", "giraffe"};
  EXPECT_THROW(session_->plan(r), anagram::Error);
  auto p = request();
  p.views = {"pixel_permute"};  // no 32x32 map for anti-segregation
  EXPECT_THROW(session_->plan(p), anagram::Error);
  p.antiseg = false;  // ... which is fine without it
  EXPECT_NO_THROW(run(p, "pixel_ok"));
}

TEST_F(SessionTest, OnePromptWorksWithoutAntiSegregation) {
  anagram::GenerateRequest r;
  r.prompts = {"a dog"};
  r.steps = 2;
  r.stages = 1;
  const auto plan = session_->plan(r);
  EXPECT_FALSE(plan.antiseg());
  ASSERT_EQ(plan.notes.size(), 1u);
  const auto meta = nlohmann::json::parse(read(run(r, "one") / "metadata.json"));
  EXPECT_EQ(meta.at("method").at("antiseg"), false);
}

TEST_F(SessionTest, MetadataReproducesTheSampleByteForByte) {
  auto r = request();
  r.seed = 11;
  r.num_samples = 2;
  const fs::path out = root_ / "first";
  anagram::prepare_output_dir(out);
  const anagram::GenerationPlan plan = session_->plan(r);
  const fs::path second = anagram::write_sample(out, session_->generate(plan, 1));
  EXPECT_EQ(second.filename(), "sample_000");
  const anagram::RecordedRun recorded = anagram::read_recorded_run(second / "metadata.json");
  EXPECT_EQ(recorded.request.seed, 12u);
  EXPECT_EQ(recorded.request.num_samples, 1);
  const fs::path again = run(recorded.request, "again");
  for (const char* file : {"anagram.png", "sheet.png", "view_1_rotate_180_a-photo-of-a-cat.png"}) {
    EXPECT_EQ(read(again / file), read(second / file)) << file;
  }
}

TEST_F(SessionTest, NeverReplacesWhatIsInTheOutputFolder) {
  const fs::path out = root_ / "kept";
  fs::create_directories(out / "sample_000");
  std::ofstream(out / "sample_000" / "mine.txt") << "user data";
  std::ofstream(out / "sample_001") << "a file of the user's";
  fs::create_directories(out / ".sample_007.tmp-999999999");  // no such process: stale
  anagram::prepare_output_dir(out);
  EXPECT_FALSE(fs::exists(out / ".sample_007.tmp-999999999"));
  auto r = request();
  r.steps = 1;
  const auto dir = anagram::write_sample(out, session_->generate(r));
  EXPECT_EQ(dir.filename(), "sample_002");
  EXPECT_EQ(read(out / "sample_000" / "mine.txt"), "user data");
  EXPECT_EQ(read(out / "sample_001"), "a file of the user's");
}

TEST_F(SessionTest, InterruptStopsTheSampleInFlight) {
  std::atomic<bool> stop{false};
  anagram::RunOptions run;
  run.interrupted = &stop;
  run.progress = [&](const anagram::Progress& p) {
    if (p.sample == 1 && p.step == 1) stop = true;
  };
  auto r = request();
  r.num_samples = 3;
  r.steps = 2;
  const anagram::GenerationPlan plan = session_->plan(r);
  EXPECT_NO_THROW(session_->generate(plan, 0, run));
  try {
    session_->generate(plan, 1, run);
    FAIL() << "expected an interruption";
  } catch (const anagram::Error& e) {
    EXPECT_EQ(e.kind(), anagram::ErrorKind::kInterrupted);
    EXPECT_EQ(e.exit_code(), 130);
  }
  EXPECT_THROW(session_->generate(plan, 2, run), anagram::Error);  // before its first step
}

// The library's sample, made in memory, is what `anagram gen` writes for the same request: the
// same pictures byte for byte, and the same per-view pictures.
TEST_F(SessionTest, InMemorySampleIsWhatGenWrites) {
  auto r = request();
  r.seed = 4;
  const anagram::Sample sample = session_->generate(r);
  ASSERT_EQ(sample.stages.size(), 1u);
  const anagram::StageResult& stage = sample.stages[0];
  EXPECT_EQ(stage.image.device().type(), torch::kCPU);
  EXPECT_EQ(stage.image.sizes(), (std::vector<int64_t>{3, 64, 64}));
  ASSERT_EQ(stage.seen.sizes(), (std::vector<int64_t>{2, 3, 64, 64}));
  EXPECT_TRUE(torch::equal(stage.seen[1], stage.image.flip({1, 2})));  // rot180 of the picture
  EXPECT_EQ(stage.records.weights.sizes(), (std::vector<int64_t>{3, 2}));

  const fs::path out = root_ / "cli";
  const std::string command =
      std::string(ANAGRAM_BINARY) + " --quiet gen --bundle " + ANAGRAM_DEFAULT_BUNDLE +
      " -p 'a photo of a dog' -p 'a photo of a cat' --view rot180 --steps 3 --stages 1" +
      " --seed 4 --out " + out.string() + " > /dev/null";  // default threads, as the fixture
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  const auto written = anagram::read_png((out / "sample_000" / "anagram.png").string());
  const auto in_memory = anagram::to_rgb8(stage.image);
  EXPECT_EQ(written.pixels, in_memory.pixels);
  const auto view =
      anagram::read_png((out / "sample_000" / "view_1_rotate_180_a-photo-of-a-cat.png").string());
  EXPECT_EQ(view.pixels, anagram::to_rgb8(stage.seen[1]).pixels);
}

TEST_F(SessionTest, EmbeddingsCacheSkipsTheEncoderAndIgnoresDamagedFiles) {
  anagram::SessionOptions options;
  options.bundle = ANAGRAM_DEFAULT_BUNDLE;
  options.embeddings_cache = root_ / "cache";
  const std::vector<std::string> prompts = {"a dog", "a cat"};
  const torch::Tensor encoded = anagram::Session::open(options)->encode(prompts);
  EXPECT_TRUE(torch::equal(encoded, session_->encode(prompts)));
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(options.embeddings_cache)) {
    files.push_back(entry.path());
  }
  ASSERT_EQ(files.size(), 2u);

  auto cached = anagram::Session::open(options);
  cached->release_text_encoder();
  EXPECT_TRUE(torch::equal(cached->encode(prompts), encoded));
  EXPECT_FALSE(cached->text_encoder_loaded());  // served from the cache

  // A damaged file is not trusted: the encoder runs again and rewrites it.
  std::ofstream(files[0], std::ios::binary | std::ios::trunc) << "garbage";
  auto repaired = anagram::Session::open(options);
  repaired->release_text_encoder();
  EXPECT_TRUE(torch::equal(repaired->encode(prompts), encoded));
  EXPECT_TRUE(repaired->text_encoder_loaded());
  EXPECT_GT(fs::file_size(files[0]), 1000u);
}

}  // namespace
