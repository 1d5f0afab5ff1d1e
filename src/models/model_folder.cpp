#include "models/model_folder.h"

#include <algorithm>
#include <fstream>

#include "core/sha256.h"

namespace anagram::detail {

namespace fs = std::filesystem;

std::string read_manifest_bytes(const fs::path& path, uintmax_t max_bytes,
                                const std::function<void(const std::string&)>& fail) {
  const std::string name = path.filename().string();
  std::error_code ec;
  const uintmax_t size = fs::file_size(path, ec);
  if (ec) fail("cannot read " + name + ": " + ec.message());
  if (size > max_bytes) {
    fail(name + " is " + std::to_string(size) + " bytes; at most " + std::to_string(max_bytes) +
         " are accepted");
  }
  std::ifstream in(path, std::ios::binary);
  std::string bytes(static_cast<size_t>(size), '\0');
  if (!in.read(bytes.data(), static_cast<std::streamsize>(size))) fail("cannot read " + name);
  return bytes;
}

std::string folder_file(const fs::path& dir, const std::string& folder, const JsonFields& where,
                        const std::string& key, size_t max_length) {
  const std::string file = where.string(key, max_length);
  const fs::path relative(file);
  if (file.empty() || relative.is_absolute()) {
    where.fail(key, "must be a path relative to the " + folder + ", got '" + printable(file) + "'");
  }
  std::error_code ec;
  const fs::path root = fs::weakly_canonical(dir, ec);
  const fs::path target = fs::weakly_canonical(dir / relative, ec);
  const auto mismatch = std::mismatch(root.begin(), root.end(), target.begin(), target.end());
  if (ec || mismatch.first != root.end()) {
    where.fail(key, "'" + printable(file) + "' leaves the " + folder);
  }
  if (!fs::is_regular_file(target, ec)) {
    where.fail(key, "file '" + printable(file) + "' does not exist");
  }
  return file;
}

FileEntry read_file_entry(const JsonFields& files, const std::string& file) {
  if (!files.has(file)) files.fail(file, "is missing (every named file needs a hash)");
  const JsonFields entry = files.object(file);
  FileEntry f;
  f.sha256 = entry.string("sha256", 64);
  if (f.sha256.size() != 64 ||
      f.sha256.find_first_not_of("0123456789abcdef") != std::string::npos) {
    entry.fail("sha256", "must be 64 lower-case hex digits");
  }
  f.bytes = entry.unsigned_integer("bytes");
  return f;
}

std::string file_mismatch(const fs::path& dir, const std::string& file, const FileEntry& expected) {
  const fs::path path = dir / file;
  std::error_code ec;
  const uintmax_t size = fs::file_size(path, ec);
  if (ec || size != expected.bytes) {
    return "file '" + printable(file) + "' has " + std::to_string(size) +
           " bytes, the manifest says " + std::to_string(expected.bytes) +
           " (a damaged or replaced file)";
  }
  std::string actual;
  try {
    actual = sha256_of_file(path.string());
  } catch (const Error&) {
    return "cannot read file '" + printable(file) + "'";
  }
  if (actual != expected.sha256) {
    return "file '" + printable(file) +
           "' does not match its SHA-256 in manifest.json (a damaged or replaced file)";
  }
  return "";
}

}  // namespace anagram::detail
