// Loading untrusted TorchScript: code that runs while loading and operators outside the
// allow-list of tensor math are refused, naming the file and the operator, before anything in
// the file runs; the bundled models pass.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "anagram/core/error.h"
#include "anagram/models/bundle.h"
#include "models/script_module.h"

namespace {

namespace fs = std::filesystem;

struct ScriptModuleTest : ::testing::Test {
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("anagram_script_module_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_, ec_); }

  // Saves a module with the given TorchScript methods and tries to load it.
  void load(const std::string& methods) {
    torch::jit::Module module("Test");
    module.define(methods);
    module.save((dir_ / "model.pt").string());
    anagram::detail::load_script_module({dir_.string(), "model.pt", "the test model"}, torch::kCPU,
                                        torch::kFloat);
  }
  void expect_refused(const std::string& methods, const std::string& needle) {
    try {
      load(methods);
      FAIL() << "expected a refusal mentioning " << needle;
    } catch (const anagram::Error& e) {
      EXPECT_EQ(e.kind(), anagram::ErrorKind::kBundle);
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("model.pt"), std::string::npos) << e.what();
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
    }
  }

  fs::path dir_;
  std::error_code ec_;
};

TEST_F(ScriptModuleTest, TensorMathLoads) {
  EXPECT_NO_THROW(load(R"(
def forward(self, x: Tensor) -> Tensor:
    return torch.softmax(x * 2.0 + 1.0, dim=-1).sum(0)
)"));
}

TEST_F(ScriptModuleTest, FileOperatorsAreRefusedWhereverTheyHide) {
  expect_refused(R"(
def forward(self, x: Tensor) -> Tensor:
    return torch.from_file("/etc/hostname", True, 1)
)",
                 "aten::from_file");
  // In a helper method that forward calls, inside a branch.
  expect_refused(R"(
def helper(self, x: Tensor):
    if x.sum() > 1e30:
        torch.save(x, "/tmp/anagram-test-should-not-exist")

def forward(self, x: Tensor) -> Tensor:
    self.helper(x)
    return x
)",
                 "aten::save");
  expect_refused(R"(
def forward(self, x: Tensor) -> Tensor:
    print(x)
    return x
)",
                 "prim::Print");
  EXPECT_FALSE(fs::exists("/tmp/anagram-test-should-not-exist"));
}

TEST_F(ScriptModuleTest, CodeThatRunsWhileLoadingIsRefused) {
  expect_refused(R"(
def __getstate__(self) -> Tuple[int, int]:
    return (1, 2)

def __setstate__(self, state: Tuple[int, int]) -> None:
    pass

def forward(self, x: Tensor) -> Tensor:
    return x
)",
                 "__setstate__");
}

TEST_F(ScriptModuleTest, NotTorchScriptIsOneLine) {
  std::ofstream(dir_ / "model.pt") << "not a zip archive";
  try {
    anagram::detail::load_script_module({dir_.string(), "model.pt", "the test model"}, torch::kCPU,
                                        torch::kFloat);
    FAIL();
  } catch (const anagram::Error& e) {
    EXPECT_NE(std::string(e.what()).find("is not a TorchScript file"), std::string::npos);
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
  }
}

TEST_F(ScriptModuleTest, EveryOperatorOfTheBundledModelsIsAllowed) {
  const anagram::Manifest m = anagram::read_manifest(ANAGRAM_DEFAULT_BUNDLE);
  for (const std::string& file : m.named_files()) {
    if (file.size() < 3 || file.compare(file.size() - 3, 3, ".pt") != 0) continue;
    const auto module = torch::jit::load(m.path_of(file));
    const auto ops = anagram::detail::module_operators(module);
    EXPECT_GT(ops.size(), 5u) << file;
    for (const auto& op : ops) EXPECT_TRUE(anagram::detail::operator_allowed(op)) << file << op;
  }
}

}  // namespace
