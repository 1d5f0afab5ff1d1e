// What every model folder a user hands the program (a bundle, a scorer) needs: files named by
// its manifest stay inside the folder, and each file's size and SHA-256 match the manifest.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "anagram/models/bundle.h"
#include "core/json_fields.h"

namespace anagram::detail {

// The bytes of a manifest file, refusing more than `max_bytes`; problems go to `fail`, which
// must throw ("cannot read manifest.json: ...", "manifest.json is N bytes; at most M ...").
std::string read_manifest_bytes(const std::filesystem::path& path, uintmax_t max_bytes,
                                const std::function<void(const std::string&)>& fail);

// Reads `key` of `where` as a plain relative path that stays inside `dir` (symbolic links are
// followed before the check) and names a regular file; fails through `where` otherwise.
// `folder` names it in errors ("bundle folder").
std::string folder_file(const std::filesystem::path& dir, const std::string& folder,
                        const JsonFields& where, const std::string& key, size_t max_length = 255);

// The {"sha256": ..., "bytes": ...} entry of `file` in a manifest's "files" object.
FileEntry read_file_entry(const JsonFields& files, const std::string& file);

// "" when `dir / file` has the promised size and SHA-256, else what is wrong, for the caller's
// error ("file 'x' has 12 bytes, the manifest says 40 (a damaged or replaced file)").
std::string file_mismatch(const std::filesystem::path& dir, const std::string& file,
                          const FileEntry& expected);

}  // namespace anagram::detail
