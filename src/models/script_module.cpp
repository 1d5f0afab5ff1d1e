#include "models/script_module.h"

#include <caffe2/serialize/inline_container.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/serialization/import_source.h>
#include <torch/version.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <map>
#include <set>
#include <unordered_set>

#include "anagram/core/error.h"
#include "anagram/core/error_text.h"
#include "anagram/models/bundle.h"
#include "models/archive_scan.h"

namespace anagram::detail {
namespace {

void walk_block(const torch::jit::Block* block, std::set<std::string>& found) {
  for (const torch::jit::Node* node : block->nodes()) {
    found.insert(node->kind().toQualString());
    for (const torch::jit::Block* sub : node->blocks()) walk_block(sub, found);
  }
}

void walk_function(const torch::jit::Function& function, std::set<std::string>& found) {
  if (!function.isGraphFunction()) {
    found.insert("<builtin function " + function.qualname().qualifiedName() + ">");
    return;
  }
  walk_block(torch::jit::toGraphFunction(function).graph()->block(), found);
}

// The file, open once: the check and torch::jit::load read the same bytes even if the path is
// replaced in between.
class FileReader final : public caffe2::serialize::ReadAdapterInterface {
 public:
  explicit FileReader(const std::string& path) {
    fd_ = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    struct stat info {};
    if (fd_ < 0 || fstat(fd_, &info) != 0) {
      const int error = errno;
      if (fd_ >= 0) close(fd_);
      throw std::runtime_error(std::strerror(error));
    }
    if (!S_ISREG(info.st_mode)) {
      close(fd_);
      throw std::runtime_error("not a regular file");
    }
    size_ = static_cast<size_t>(info.st_size);
  }
  ~FileReader() override { close(fd_); }
  FileReader(const FileReader&) = delete;
  FileReader& operator=(const FileReader&) = delete;

  size_t size() const override { return size_; }
  size_t read(uint64_t pos, void* buf, size_t n, const char* /*what*/) const override {
    size_t done = 0;
    while (done < n) {
      const ssize_t got =
          pread(fd_, static_cast<char*>(buf) + done, n - done, static_cast<off_t>(pos + done));
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) break;
      done += static_cast<size_t>(got);
    }
    return done;
  }

 private:
  int fd_ = -1;
  size_t size_ = 0;
};

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

[[noreturn]] void refuse(const ModuleFile& file, const std::string& record,
                         const std::string& why) {
  throw Error(ErrorKind::kBundle, file.describe() + " (" + printable(record) + ") " + why);
}

std::unique_ptr<caffe2::serialize::PyTorchStreamReader> open_archive(
    const ModuleFile& file, const std::shared_ptr<caffe2::serialize::ReadAdapterInterface>& bytes,
    std::vector<std::string>& records) {
  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> reader;
  try {
    reader = std::make_unique<caffe2::serialize::PyTorchStreamReader>(bytes);
    records = reader->getAllRecords();
  } catch (const std::exception& e) {
    throw Error(ErrorKind::kBundle,
                file.describe() + " is not a TorchScript file: " + describe_exception(e));
  }
  return reader;
}

std::string read_record(const ModuleFile& file, caffe2::serialize::PyTorchStreamReader& reader,
                        const std::string& name) {
  try {
    auto [data, size] = reader.getRecord(name);
    return std::string(static_cast<const char*>(data.get()), size);
  } catch (const std::exception& e) {
    throw Error(ErrorKind::kBundle, file.describe() + " is damaged: " + describe_exception(e));
  }
}

void check_record_names(const ModuleFile& file, const std::vector<std::string>& records) {
  // The loader looks records up ignoring case (miniz): names that differ only in case, or a code
  // file whose ".py" is not lower case, could show it other bytes than the ones checked here.
  std::set<std::string> seen;
  for (const auto& name : records) {
    if (!seen.insert(lower(name)).second) refuse(file, name, "appears twice in the archive");
    if (ends_with(lower(name), ".py") && !ends_with(name, ".py")) {
      refuse(file, name, "is code under a name the loader would also find");
    }
  }
  // Before PyTorch 1.4 archives held model.json, whose loader runs __setstate__ its own way.
  if (seen.count("model.json")) refuse(file, "model.json", "is the legacy format, not read");
}

// The archive's code, read and scanned (archive_scan.h), ready to compile.
struct ArchiveCode {
  std::map<std::string, std::string> code;  // archive path -> text, for compiling
  std::map<std::string, CodeFacts> facts;   // qualifier ("__torch__.a.b") -> what it defines
  int64_t constants = 0;
};

ArchiveCode scan_code_files(const ModuleFile& file, caffe2::serialize::PyTorchStreamReader& reader,
                            const std::vector<std::string>& records) {
  ArchiveCode result;
  size_t code_bytes = 0;
  for (const auto& name : records) {
    if (ends_with(name, ".pkl") &&
        read_record(file, reader, name).find("torch.classes") != std::string::npos) {
      refuse(file, name, "uses a custom C++ class (torch.classes), which model files may not");
    }
    if (!ends_with(name, ".py")) continue;
    std::string text = read_record(file, reader, name);
    code_bytes += text.size();
    if (code_bytes > 4 * kMaxCodeFileBytes) refuse(file, name, "is more code than the limit");
    CodeFacts found;
    try {
      found = scan_code_file(text);
    } catch (const Error& e) {
      refuse(file, name, e.detail());
    }
    result.constants = std::max(result.constants, found.constants);
    if (name.rfind("code/", 0) == 0) {
      std::string qualifier = name.substr(5, name.size() - 8);
      std::replace(qualifier.begin(), qualifier.end(), '/', '.');
      result.facts[qualifier] = std::move(found);
      result.code[name] = std::move(text);
    }
  }
  constexpr int64_t kMaxConstants = 1 << 20;
  if (result.constants > kMaxConstants) refuse(file, "code/", "uses more constants than the limit");
  return result;
}

// Compiles every class of `code` into a fresh unit. `code` and `placeholders` must outlive the
// unit's use: the importer reads both.
std::shared_ptr<torch::jit::CompilationUnit> compile_code(
    const ModuleFile& file, const caffe2::serialize::PyTorchStreamReader& reader,
    const ArchiveCode& code, const std::vector<at::IValue>& placeholders) {
  auto unit = std::make_shared<torch::jit::CompilationUnit>();
  std::string compiling = "code/";
  try {
    torch::jit::SourceImporter importer(
        unit, &placeholders,
        [&](const std::string& qualifier) -> std::shared_ptr<torch::jit::Source> {
          std::string path = qualifier;
          std::replace(path.begin(), path.end(), '.', '/');
          const auto it = code.code.find("code/" + path + ".py");
          if (it == code.code.end()) return nullptr;
          return std::make_shared<torch::jit::Source>(c10::string_view(it->second), it->first, 1);
        },
        reader.version());
    for (const auto& [qualifier, defined] : code.facts) {
      compiling = "code/" + qualifier;
      std::replace(compiling.begin(), compiling.end(), '.', '/');
      compiling += ".py";
      for (const auto& name : defined.classes) {
        importer.loadType(c10::QualifiedName(c10::QualifiedName(qualifier), name));
      }
    }
  } catch (const std::exception& e) {
    refuse(file, compiling, "does not compile: " + describe_exception(e));
  }
  return unit;
}

void check_unit_operators(const ModuleFile& file, const torch::jit::CompilationUnit& unit) {
  std::set<std::string> found;
  for (const torch::jit::Function* function : unit.get_functions()) walk_function(*function, found);
  for (const auto& op : found) {
    if (!operator_allowed(op)) {
      throw Error(ErrorKind::kBundle, file.describe() + " uses the operator " + op +
                                          ", which model files may not use (only tensor math "
                                          "is allowed; see docs/bundle.md)");
    }
  }
}

// Reads every code file of the archive and decides on its parsed code (archive_scan.h), then
// compiles all of it, without running anything, and checks the operators of every method and
// function against the allow-list: all before torch::jit::load unpickles a single object.
void check_archive(const ModuleFile& file,
                   const std::shared_ptr<caffe2::serialize::ReadAdapterInterface>& bytes) {
  std::vector<std::string> records;
  const auto reader = open_archive(file, bytes, records);
  check_record_names(file, records);
  const ArchiveCode code = scan_code_files(file, *reader, records);

  // Compiling is not running: the compiler only evaluates defaults and class constants (literals
  // by now) and folds pure operations on literals. The archive's tensor constants are not
  // unpickled for this check (unpickling is part of what waits for it); compiling needs only
  // their count, so empty tensors stand in for them and are never evaluated.
  const std::vector<at::IValue> placeholders(static_cast<size_t>(code.constants),
                                             at::IValue(at::empty({0})));
  const auto unit = compile_code(file, *reader, code, placeholders);
  check_unit_operators(file, *unit);
}

}  // namespace

std::string ModuleFile::path() const { return (std::filesystem::path(bundle) / file).string(); }

std::string ModuleFile::describe() const {
  return folder_kind + " '" + printable(bundle) + "': " + role + " '" + printable(file) + "'";
}

std::vector<std::string> module_operators(const torch::jit::Module& module) {
  std::set<std::string> found;
  for (const torch::jit::Function* function :
       module._ivalue()->compilation_unit()->get_functions()) {
    walk_function(*function, found);
  }
  for (const auto& sub : module.modules()) {
    for (const auto& method : sub.get_methods()) walk_function(method.function(), found);
  }
  return {found.begin(), found.end()};
}

namespace {

// Module::to(dtype) casts every tensor of the module's state; as Python's nn.Module.to, only the
// floating ones may change (a CLIP text model's int64 position ids must stay integers).
void cast_floating_state(torch::jit::Module& module, c10::ScalarType dtype) {
  torch::NoGradGuard no_grad;
  const auto cast = [dtype](at::Tensor t) {
    if (t.is_floating_point() && t.scalar_type() != dtype) t.set_data(t.to(dtype));
  };
  for (const at::Tensor& t : module.parameters()) cast(t);
  for (const at::Tensor& t : module.buffers()) cast(t);
}

}  // namespace

std::shared_ptr<torch::jit::Module> load_script_module(const ModuleFile& file,
                                                       const c10::Device& device,
                                                       std::optional<c10::ScalarType> dtype) {
  std::shared_ptr<caffe2::serialize::ReadAdapterInterface> bytes;
  try {
    bytes = std::make_shared<FileReader>(file.path());
  } catch (const std::exception& e) {
    throw Error(ErrorKind::kBundle, "cannot read " + file.describe() + ": " + e.what());
  }
  check_archive(file, bytes);
  std::shared_ptr<torch::jit::Module> module;
  try {
    module = std::make_shared<torch::jit::Module>(torch::jit::load(bytes, device));
  } catch (const std::exception& e) {
    throw Error(ErrorKind::kBundle,
                "cannot load " + file.describe() + ": " + describe_exception(e));
  }
  for (const auto& op : module_operators(*module)) {
    if (!operator_allowed(op)) {
      throw Error(ErrorKind::kBundle, file.describe() + " uses the operator " + op +
                                          ", which model files may not use (only tensor math "
                                          "is allowed; see docs/bundle.md)");
    }
  }
  try {
    module->eval();
    if (dtype) cast_floating_state(*module, *dtype);
  } catch (const std::exception& e) {
    throw Error(ErrorKind::kBundle,
                "cannot load " + file.describe() + ": " + describe_exception(e));
  }
  return module;
}

namespace {

class EscapingHandler final : public c10::WarningHandler {
 public:
#if TORCH_VERSION_MAJOR >= 2
  void process(const c10::Warning& warning) override { log(warning.msg()); }
#else
  void process(const c10::SourceLocation&, const std::string& msg, bool) override { log(msg); }
#endif

 private:
  static void log(const std::string& msg) {
    spdlog::warn("model code warns: {}", quote_for_error(msg, 300));
  }
};

EscapingHandler& escaping_handler() {
  static EscapingHandler handler;
  return handler;
}

}  // namespace

#if TORCH_VERSION_MAJOR >= 2
ModelWarnings::ModelWarnings() : previous_(c10::WarningUtils::get_warning_handler()) {
  c10::WarningUtils::set_warning_handler(&escaping_handler());
}
ModelWarnings::~ModelWarnings() { c10::WarningUtils::set_warning_handler(previous_); }
#else
ModelWarnings::ModelWarnings() : previous_(c10::Warning::get_warning_handler()) {
  c10::Warning::set_warning_handler(&escaping_handler());
}
ModelWarnings::~ModelWarnings() { c10::Warning::set_warning_handler(previous_); }
#endif

torch::Tensor run_probe(const ModuleFile& file, const std::function<torch::Tensor()>& probe) {
  try {
    const ModelWarnings warnings;
    torch::NoGradGuard no_grad;
    return probe();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(ErrorKind::kBundle,
                file.describe() + " fails on a probe input: " + describe_exception(e));
  }
}

void expect_shape(const ModuleFile& file, const torch::Tensor& tensor,
                  const std::vector<int64_t>& expected) {
  if (tensor.sizes().vec() != expected) {
    throw Error(ErrorKind::kBundle, file.describe() + " returns shape " + c10::str(tensor.sizes()) +
                                        " but the manifest implies " + c10::str(expected));
  }
}

}  // namespace anagram::detail
