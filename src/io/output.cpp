#include "anagram/io/output.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <fstream>
#include <random>
#include <regex>

#include "anagram/core/error.h"
#include "anagram/core/error_text.h"
#include "anagram/io/image_io.h"

namespace anagram {

namespace fs = std::filesystem;

namespace {

const std::regex& sample_name() {
  static const std::regex pattern(R"(sample_(\d{3,9}))");
  return pattern;
}

// .sample_NNN.tmp-PID-TOKEN while a sample is written (its writer holds a lock on it);
// .sample_NNN.new-PID-TOKEN for the moment before the lock is taken; .sample_NNN.tmp-PID from
// earlier versions, which took no lock.
const std::regex& temporary_name() {
  static const std::regex pattern(
      R"(\.(sample|seed)_\d{3,20}\.(tmp|new)-(\d{1,10})(-[0-9a-f]{16})?)");
  return pattern;
}

// Whether process `pid` has certainly ended. Never this process: its threads write samples too.
bool process_gone(long pid) {
  if (pid <= 0 || pid == static_cast<long>(getpid())) return false;
  return kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
}

// The folder, opened (not through a symbolic link) and locked, or -1 if another open file holds
// the lock (its writer, in this process or another) or it cannot be opened.
int lock_folder(const fs::path& folder, bool wait) {
  const int fd = open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return -1;
  int locked;
  do {
    locked = flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB));
  } while (locked != 0 && errno == EINTR);
  if (locked != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Removes a temporary sample folder left behind, only where its writer has provably ended:
// it took the lock (released by the kernel when its process ends, however it ends) and nobody
// holds it now; or, for an earlier version's folder, its process is gone.
void remove_if_abandoned(const fs::path& folder, const std::smatch& match) {
  std::error_code ec;
  if (match[2].str() == "new") {
    // Empty until renamed to .tmp-: its writer died between creating and locking it.
    if (process_gone(std::stol(match[3].str()))) fs::remove(folder, ec);
    return;
  }
  if (!match[4].matched) {
    if (process_gone(std::stol(match[3].str()))) fs::remove_all(folder, ec);
    return;
  }
  const int fd = lock_folder(folder, false);
  if (fd < 0) return;
  fs::remove_all(folder, ec);
  close(fd);
}

std::string random_token() {
  std::random_device device;
  char token[17];
  std::snprintf(token, sizeof token, "%08x%08x", device(), device());
  return token;
}

std::string sample_folder_name(int number) {
  char name[32];
  std::snprintf(name, sizeof name, "sample_%03d", number);
  return name;
}

}  // namespace

void check_output_dir(const fs::path& dir) {
  if (dir.empty()) throw Error(ErrorKind::kInvalidArgument, "out", "is empty");
  if (dir.native().size() >= PATH_MAX) {
    throw Error(ErrorKind::kInvalidArgument, "out",
                "is " + std::to_string(dir.native().size()) + " bytes long (at most " +
                    std::to_string(PATH_MAX - 1) + ")");
  }
  for (const auto& part : dir) {
    if (part.native().size() > NAME_MAX) {
      throw Error(ErrorKind::kInvalidArgument, "out",
                  "has a name of " + std::to_string(part.native().size()) + " bytes (at most " +
                      std::to_string(NAME_MAX) + " per folder name)");
    }
  }
  std::error_code ec;
  fs::path existing = dir;
  while (!existing.empty() && !fs::exists(existing, ec)) {
    if (fs::is_symlink(fs::symlink_status(existing, ec))) {
      throw Error(ErrorKind::kIo, "out",
                  "'" + printable(existing.string()) +
                      "' is a symbolic link to nothing; the output folder "
                      "cannot be created through it");
    }
    existing = existing.parent_path();
  }
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
        !entry.is_symlink(ec)) {
      remove_if_abandoned(entry.path(), match);
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
  // Named for its owner (PID and a random token, so workers of one process differ) and locked
  // before it takes the name that clean-ups look at: prepare_output_dir removes only folders
  // whose lock is free, i.e. whose writer has ended.
  const std::string owner = std::to_string(getpid()) + "-" + random_token();
  const fs::path fresh = parent / ("." + name + ".new-" + owner);
  temp_path_ = parent / ("." + name + ".tmp-" + owner);
  if (mkdir(fresh.c_str(), 0777) != 0) {
    throw Error(ErrorKind::kIo, "cannot create '" + fresh.string() + "': " + std::strerror(errno));
  }
  lock_fd_ = lock_folder(fresh, true);
  if (lock_fd_ < 0 || rename(fresh.c_str(), temp_path_.c_str()) != 0) {
    const int error = errno;
    if (lock_fd_ >= 0) close(lock_fd_);
    std::error_code ignored;
    fs::remove(fresh, ignored);
    throw Error(ErrorKind::kIo,
                "cannot create '" + temp_path_.string() + "': " + std::strerror(error));
  }
}

SampleFolder::~SampleFolder() {
  if (!committed_) {
    std::error_code ignored;
    fs::remove_all(temp_path_, ignored);
  }
  if (lock_fd_ >= 0) close(lock_fd_);
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
