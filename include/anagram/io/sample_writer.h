// anagram/io/sample_writer.h: a Sample written as a folder a person can open.
//
// Basic usage:
//   anagram::Sample sample = session->generate(request);
//   std::filesystem::path dir = anagram::write_sample("out", sample);  // out/sample_000
//
// For each stage: the anagram, the picture under each view and the captioned sheet; the
// concept attention maps where the stage recorded them; metadata.json. The last stage's files
// have plain names (anagram.png, sheet.png, view_K_<view>_<prompt>.png); earlier stages' carry
// their size (anagram_64.png, ...). The folder appears whole or not at all (io/output.h).
//
// The writer takes the pictures as the sample holds them (their views already applied by the
// sampler): it never applies a view itself, so nothing here depends on the device a sample was
// made on. Tensors may live on any device; they are copied to the host on entry.
#pragma once

#include <filesystem>
#include <string>

#include "anagram/io/sample.h"

namespace anagram {

// Writes OUT/sample_NNN/ (the next free number), or OUT/<folder_name>/ when one is given
// (batch: seed_NNNNNN), and returns its path. `out` must exist (prepare_output_dir).
// Throws Error(kInvalidArgument) for a sample whose pictures do not match its tasks, and
// Error(kIo) when the folder cannot be written (nothing is left behind then).
std::filesystem::path write_sample(const std::filesystem::path& out, const Sample& sample,
                                   const std::string& folder_name = "");

// Whether `dir` holds a complete sample, as write_sample commits one: a real folder (not a
// symbolic link) whose metadata.json (a regular file of at most 64 MiB) parses and names
// files that are all there as regular files. Reads nothing else; never throws.
bool sample_folder_complete(const std::filesystem::path& dir);

}  // namespace anagram
