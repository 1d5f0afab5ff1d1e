// anagram/output.h: output folders that appear whole or not at all.
#pragma once

#include <filesystem>
#include <string>

namespace anagram {

// Creates `dir` if needed and checks that files can be created in it.
// Throws anagram::Error(kIo) with a one-line reason otherwise.
void prepare_output_dir(const std::filesystem::path& dir);

// Collects a sample's files in a hidden temporary folder beside the final one; commit()
// renames it into place (replacing an older folder of that name). If commit() is never
// reached (error, interrupt), the destructor removes the temporary folder.
class SampleFolder {
 public:
  SampleFolder(const std::filesystem::path& parent, const std::string& name);
  ~SampleFolder();
  SampleFolder(const SampleFolder&) = delete;
  SampleFolder& operator=(const SampleFolder&) = delete;

  void add_file(const std::string& filename, const std::string& bytes);
  std::filesystem::path commit();

 private:
  std::filesystem::path final_path_;
  std::filesystem::path temp_path_;
  bool committed_ = false;
};

// Lower-case ASCII letters, digits and '-' from free text, for file names ("a Dog!" -> "a-dog").
std::string slugify(const std::string& text, size_t max_length = 40);

}  // namespace anagram
