// anagram/io/output.h: output folders that appear whole or not at all, and never replace
// anything already there.
//
// Sample folders are OUT/sample_NNN. A new sample takes the number after the highest one in
// OUT (so a second run continues the numbering) and is renamed into place only if that name is
// still free (renameat2 RENAME_NOREPLACE: no race with another run); files and folders already
// in OUT are never removed or replaced. While a sample is written it lives in a hidden
// OUT/.sample_NNN.tmp-PID-TOKEN (or .seed_NNN.tmp-PID-TOKEN) folder, which its writer keeps
// locked (flock) and removes on any error; one left behind by a killed run is removed by a later
// run, once its lock is free: the kernel releases it when the writer's process ends, and no
// other writer (another worker thread of the same process included) ever holds it.
#pragma once

#include <filesystem>
#include <string>

namespace anagram {

// Checks, without creating anything, that `dir` is a folder that can be written or that it can
// be created (its nearest existing parent is a writable folder). Throws Error(kIo).
void check_output_dir(const std::filesystem::path& dir);

// Creates `dir` if needed, checks that files can be created in it and removes temporary
// sample folders whose writer has provably ended (never one being written, by this process or
// another). Throws anagram::Error(kIo).
void prepare_output_dir(const std::filesystem::path& dir);

// The sample numbers in use in `dir` (folders or files named sample_NNN): the next is max + 1.
int next_sample_number(const std::filesystem::path& dir);

// Collects a sample's files in a hidden temporary folder; commit() renames it to the first free
// sample_NNN, or to `name` when one is given (batch runs name samples by seed: seed_NNN), which
// must then still be free. If commit() is never reached (error, interrupt), the destructor
// removes the temporary folder.
class SampleFolder {
 public:
  explicit SampleFolder(const std::filesystem::path& parent, const std::string& name = "");
  ~SampleFolder();
  SampleFolder(const SampleFolder&) = delete;
  SampleFolder& operator=(const SampleFolder&) = delete;

  void add_file(const std::string& filename, const std::string& bytes);
  std::filesystem::path commit();

 private:
  std::filesystem::path parent_;
  std::string name_;  // "" = the next free sample_NNN
  std::filesystem::path temp_path_;
  int lock_fd_ = -1;  // the temporary folder, locked while this object lives
  bool committed_ = false;
};

// Lower-case ASCII letters, digits and '-' from free text, for file names ("a Dog!" -> "a-dog").
std::string slugify(const std::string& text, size_t max_length = 40);

}  // namespace anagram
