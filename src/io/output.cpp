#include "anagram/io/output.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <regex>

#include "anagram/core/error.h"
#include "anagram/io/image_io.h"

namespace anagram {

namespace fs = std::filesystem;

namespace {

const std::regex& sample_name() {
  static const std::regex pattern(R"(sample_(\d{3,9}))");
  return pattern;
}

const std::regex& temporary_name() {
  static const std::regex pattern(R"(\.(sample|seed)_\d{3,20}\.tmp-(\d{1,10}))");
  return pattern;
}

bool process_gone(long pid) {
  if (pid <= 0 || pid == static_cast<long>(getpid())) return pid == static_cast<long>(getpid());
  return kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
}

std::string sample_folder_name(int number) {
  char name[32];
  std::snprintf(name, sizeof name, "sample_%03d", number);
  return name;
}

}  // namespace

void check_output_dir(const fs::path& dir) {
  std::error_code ec;
  fs::path existing = dir;
  while (!existing.empty() && !fs::exists(existing, ec)) existing = existing.parent_path();
  if (existing.empty()) existing = ".";
  if (!fs::is_directory(existing, ec)) {
    throw Error(ErrorKind::kIo, "out",
                "cannot create output folder '" + dir.string() + "': '" + existing.string() +
                    "' is not a folder");
  }
  if (access(existing.c_str(), W_OK | X_OK) != 0) {
    throw Error(ErrorKind::kIo, "out",
                "output folder '" + dir.string() + "' cannot be created: '" + existing.string() +
                    "' is not writable");
  }
}

void prepare_output_dir(const fs::path& dir) {
  check_output_dir(dir);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir)) {
    throw Error(
        ErrorKind::kIo, "out",
        "cannot create output folder '" + dir.string() + "'" + (ec ? ": " + ec.message() : ""));
  }
  if (access(dir.c_str(), W_OK | X_OK) != 0) {
    throw Error(ErrorKind::kIo, "out", "output folder '" + dir.string() + "' is not writable");
  }
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    std::smatch match;
    const std::string name = entry.path().filename().string();
    if (std::regex_match(name, match, temporary_name()) && entry.is_directory(ec) &&
        process_gone(std::stol(match[2].str()))) {
      fs::remove_all(entry.path(), ec);
    }
  }
}

int next_sample_number(const fs::path& dir) {
  int next = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    std::smatch match;
    const std::string name = entry.path().filename().string();
    if (std::regex_match(name, match, sample_name())) {
      next = std::max(next, std::stoi(match[1].str()) + 1);
    }
  }
  return next;
}

SampleFolder::SampleFolder(const fs::path& parent, const std::string& name_or_empty)
    : parent_(parent), name_(name_or_empty) {
  const std::string name = name_.empty() ? sample_folder_name(next_sample_number(parent)) : name_;
  temp_path_ = parent / ("." + name + ".tmp-" + std::to_string(getpid()));
  std::error_code ec;
  // Ours by name and PID: left by this process's earlier failed attempt.
  fs::remove_all(temp_path_, ec);
  if (!fs::create_directory(temp_path_, ec)) {
    throw Error(ErrorKind::kIo,
                "cannot create '" + temp_path_.string() + "'" + (ec ? ": " + ec.message() : ""));
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
  if (!name_.empty()) {
    const fs::path target = parent_ / name_;
    if (renameat2(AT_FDCWD, temp_path_.c_str(), AT_FDCWD, target.c_str(), RENAME_NOREPLACE) != 0) {
      throw Error(ErrorKind::kIo,
                  "cannot move results into '" + target.string() + "': " + std::strerror(errno));
    }
    committed_ = true;
    return target;
  }
  for (int number = next_sample_number(parent_);; ++number) {
    const fs::path target = parent_ / sample_folder_name(number);
    // RENAME_NOREPLACE: fails with EEXIST instead of replacing what another run (or the user)
    // put there since the number was chosen.
    if (renameat2(AT_FDCWD, temp_path_.c_str(), AT_FDCWD, target.c_str(), RENAME_NOREPLACE) == 0) {
      committed_ = true;
      return target;
    }
    if (errno != EEXIST && errno != ENOTEMPTY) {
      throw Error(ErrorKind::kIo,
                  "cannot move results into '" + target.string() + "': " + std::strerror(errno));
    }
    if (number > 999999999) throw Error(ErrorKind::kIo, "no free sample number left");
  }
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
