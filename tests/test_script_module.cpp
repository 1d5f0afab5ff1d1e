// Loading untrusted TorchScript: code that runs while loading and operators outside the
// allow-list of tensor math are refused, naming the file and the operator, before anything in
// the file runs (however the code is disguised); the scanner of code files bounds what reaches
// TorchScript's recursive parser; the bundled models pass.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "anagram/core/error.h"
#include "anagram/models/bundle.h"
#include "hostile_archives.h"
#include "models/archive_scan.h"
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
  // Saved code writes a device constant as torch.device("cpu").
  EXPECT_NO_THROW(load(R"(
def forward(self, x: Tensor, scale: float = 0.5) -> Tensor:
    return x.to(torch.device("cpu")) * scale
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

TEST_F(ScriptModuleTest, CodeHiddenFromATextCheckIsRefusedAndNeverRuns) {
  const fs::path marker = dir_ / "hostile-wrote-this";
  const auto archives = anagram::testing::hostile_archives(marker.string());
  ASSERT_GE(archives.size(), 5u);
  for (const auto& archive : archives) {
    {
      std::ofstream out(dir_ / "model.pt", std::ios::binary | std::ios::trunc);
      out << archive.bytes;
    }
    try {
      anagram::detail::load_script_module({dir_.string(), "model.pt", "the test model"},
                                          torch::kCPU, torch::kFloat);
      ADD_FAILURE() << archive.name << ": loaded";
    } catch (const anagram::Error& e) {
      EXPECT_EQ(e.kind(), anagram::ErrorKind::kBundle) << archive.name;
      EXPECT_NE(std::string(e.what()).find(archive.needle), std::string::npos)
          << archive.name << ": " << e.what();
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
    }
    EXPECT_FALSE(fs::exists(marker)) << archive.name << ": its code ran";
    fs::remove(marker, ec_);
  }
}

TEST_F(ScriptModuleTest, ModelWarningsAreEscaped) {
  torch::jit::Module module("Test");
  module.define(
      "def forward(self, x: Tensor) -> Tensor:\n"
      "    torch.warn(\"\x1b[2Jcleared\x07\")\n"
      "    return x\n");
  module.save((dir_ / "model.pt").string());
  const auto loaded = anagram::detail::load_script_module(
      {dir_.string(), "model.pt", "the test model"}, torch::kCPU, torch::kFloat);
  ::testing::internal::CaptureStderr();
  ::testing::internal::CaptureStdout();
  anagram::detail::run_probe({dir_.string(), "model.pt", "the test model"},
                             [&] { return loaded->forward({torch::zeros({1})}).toTensor(); });
  const std::string shown =
      ::testing::internal::GetCapturedStdout() + ::testing::internal::GetCapturedStderr();
  EXPECT_NE(shown.find("cleared"), std::string::npos) << shown;
  EXPECT_EQ(shown.find('\x1b'), std::string::npos) << shown;
  EXPECT_EQ(shown.find('\x07'), std::string::npos) << shown;
}

TEST_F(ScriptModuleTest, EveryBundledModelPassesTheChecks) {
  for (const char* folder : {"models/tiny-if", "models/demo-glyphs", "models/tiny-clip-scorer"}) {
    const fs::path root = fs::path(ANAGRAM_SOURCE_DIR) / folder;
    for (const auto& entry : fs::directory_iterator(root)) {
      if (entry.path().extension() != ".pt") continue;
      EXPECT_NO_THROW(anagram::detail::load_script_module(
          {root.string(), entry.path().filename().string(), "a bundled model"}, torch::kCPU,
          std::nullopt))
          << entry.path();
    }
  }
}

// The scanner on its own: what it refuses, and that its limits stop input before TorchScript's
// recursive lexer and parser would overflow the stack.
void expect_scan_refuses(const std::string& code, const std::string& needle) {
  try {
    anagram::detail::scan_code_file(code);
    ADD_FAILURE() << "accepted: " << code.substr(0, 200);
  } catch (const anagram::Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)
        << e.what() << "\nfor: " << code.substr(0, 120);
  }
}

TEST(ArchiveScan, ReadsCodeAsTheLoaderDoes) {
  const std::string fine = R"(op_version_set = 10
import torch
class Net(Module):
  __parameters__ = ["weight", ]
  __buffers__ = []
  weight : Tensor
  training : bool
  scale : Final[float] = -1.5
  def forward(self: __torch__.Net, x: Tensor, k: int=3, s: Optional[str]=None,
    l: List[int]=annotate(List[int], [])) -> Tensor:
    _0 = torch.mul(x, CONSTANTS.c4)  # a comment, def __setstate__
    y = ops.prim.NumToTensor(torch.size(x, 0))
    return torch.add(_0, self.weight)
def helper(x: Tensor) -> Tensor:
  return x
)";
  const auto facts = anagram::detail::scan_code_file(fine);
  EXPECT_EQ(facts.classes, std::vector<std::string>{"Net"});
  EXPECT_EQ(facts.functions, std::vector<std::string>{"helper"});
  EXPECT_EQ(facts.constants, 5);

  const std::string head = "class Net(Module):\n  training : bool\n";
  expect_scan_refuses(head + "  def \\\n  __setstate__(self, s: int) -> None:\n    pass\n",
                      "defines __setstate__");
  expect_scan_refuses(head + "  def __getstate__(self) -> int:\n    return 1\n",
                      "defines __getstate__");
  expect_scan_refuses("def __setstate__(y: int) -> int:\n  return y\n", "defines __setstate__");
  expect_scan_refuses("def f(x: int=len([1])) -> int:\n  return x\n", "not a literal");
  expect_scan_refuses(head + "  K : Final[int] = int(\"1\")\n", "not a literal");
  expect_scan_refuses("def f(x: Tensor) -> Tensor:\n  return torch.from_file(\"/x\", True, 1)\n",
                      "aten::from_file");
  expect_scan_refuses("def f(x: Tensor) -> Tensor:\n  ops.aten.save(x, \"/x\")\n  return x\n",
                      "aten::save");
  expect_scan_refuses(
      "def f(x: Tensor) -> Tensor:\n  if False:\n    torch.autograd.grad\n"
      "  return x\n",
      "aten::grad");
  expect_scan_refuses("def f(x: __torch__.torch.classes.q.P) -> int:\n  return 1\n",
                      "custom C++ class");
  expect_scan_refuses("def f(x: \"__torch__.torch.classes.q.P\") -> int:\n  return 1\n",
                      "custom C++ class");
  expect_scan_refuses("x = 1\n", "where a class or function should start");
  expect_scan_refuses("def f(x: int) -> int:\n  return x +\n", "not valid TorchScript");
  std::string nul = "def f(x: int) -> int:\n  return x\n";
  nul.insert(nul.size() - 1, 1, '\0');
  expect_scan_refuses(nul, "NUL");
}

TEST(ArchiveScan, LimitsComeBeforeTheRecursiveParser) {
  const std::string def = "def f(x: int) -> int:\n  return ";
  // Each of these crashes TorchScript's lexer or parser (stack overflow) at about 10x the size.
  expect_scan_refuses(std::string(200000, '\n') + def + "x\n", "lines in a row");
  std::string comments;
  for (int i = 0; i < 200000; ++i) comments += "# c\n";
  expect_scan_refuses(comments + def + "x\n", "lines in a row");
  expect_scan_refuses(def + std::string(20000, '(') + "x" + std::string(20000, ')') + "\n",
                      "brackets");
  std::string minus;
  for (int i = 0; i < 20000; ++i) minus += "- ";
  expect_scan_refuses(def + minus + "x\n", "operators in a row");
  std::string power = "x";
  for (int i = 0; i < 5000; ++i) power += " ** x";
  expect_scan_refuses(def + power + "\n", "chains");
  std::string sum = "x";
  for (int i = 0; i < 5000; ++i) sum += " + x";
  expect_scan_refuses(def + sum + "\n", "deeper");
  std::string elifs = "def f(x: int) -> int:\n  if x == 0:\n    x = 1\n";
  for (int i = 0; i < 2000; ++i) elifs += "  elif x == " + std::to_string(i + 1) + ":\n    x = 1\n";
  expect_scan_refuses(elifs + "  return x\n", "elif");
  std::string blocks = "def f(x: int) -> int:\n";
  for (int i = 0; i < 200; ++i) blocks += std::string(i + 1, ' ') + "if x:\n";
  expect_scan_refuses(blocks + std::string(201, ' ') + "x = 1\n  return x\n", "blocks");
  expect_scan_refuses(std::string(anagram::detail::kMaxCodeFileBytes + 1, ' '), "bytes");
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
