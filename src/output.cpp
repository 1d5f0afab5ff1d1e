#include "anagram/output.h"

#include <unistd.h>

#include <fstream>

#include "anagram/error.h"
#include "anagram/image_io.h"

namespace anagram {

namespace fs = std::filesystem;

void prepare_output_dir(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir)) {
    throw Error(ErrorKind::kIo, "cannot create output folder '" + dir.string() + "'" +
                                    (ec ? ": " + ec.message() : ""));
  }
  const fs::path probe = dir / (".anagram-write-test-" + std::to_string(getpid()));
  std::ofstream(probe) << "";
  if (!fs::exists(probe)) {
    throw Error(ErrorKind::kIo, "output folder '" + dir.string() + "' is not writable");
  }
  fs::remove(probe, ec);
}

SampleFolder::SampleFolder(const fs::path& parent, const std::string& name)
    : final_path_(parent / name),
      temp_path_(parent / ("." + name + ".tmp-" + std::to_string(getpid()))) {
  std::error_code ec;
  fs::remove_all(temp_path_, ec);
  if (!fs::create_directories(temp_path_, ec)) {
    throw Error(ErrorKind::kIo, "cannot create '" + temp_path_.string() + "'");
  }
}

SampleFolder::~SampleFolder() {
  if (!committed_) {
    std::error_code ignored;
    fs::remove_all(temp_path_, ignored);
  }
}

void SampleFolder::add_file(const std::string& filename, const std::string& bytes) {
  write_file_atomic(temp_path_ / filename, bytes);
}

fs::path SampleFolder::commit() {
  std::error_code ec;
  // Move an older result aside first: rename() cannot replace a non-empty folder.
  const fs::path old = final_path_.string() + ".old-" + std::to_string(getpid());
  const bool replaced = fs::exists(final_path_);
  if (replaced) fs::rename(final_path_, old, ec);
  if (!ec) fs::rename(temp_path_, final_path_, ec);
  if (ec) {
    throw Error(ErrorKind::kIo,
                "cannot move results into '" + final_path_.string() + "': " + ec.message());
  }
  committed_ = true;
  if (replaced) fs::remove_all(old, ec);
  return final_path_;
}

std::string slugify(const std::string& text, size_t max_length) {
  std::string slug;
  for (unsigned char c : text) {
    if (std::isalnum(c) && c < 128) {
      slug.push_back(static_cast<char>(std::tolower(c)));
    } else if (!slug.empty() && slug.back() != '-') {
      slug.push_back('-');
    }
    if (slug.size() >= max_length) break;
  }
  while (!slug.empty() && slug.back() == '-') slug.pop_back();
  return slug.empty() ? "prompt" : slug;
}

}  // namespace anagram
