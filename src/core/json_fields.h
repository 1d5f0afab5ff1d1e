// Typed, range-checked reading of untrusted JSON (bundle manifests, request files, batch lines).
//
// Every accessor names the full path of the key at fault ("stages[1].unet.in_channels") in
// its anagram::Error, checks the JSON type exactly (64.0 or 1e30 is not an integer; a string is
// not a number) and the value's range, so no caller ever sees a raw nlohmann exception.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "anagram/core/error.h"

namespace anagram::detail {

// Parses `text` as JSON, refusing more than `max_depth` levels of nesting (deep documents
// would exhaust the stack later, when they are printed or destroyed) and reporting a syntax
// error as one line. `what` names the document in the error; `kind` is the error's kind.
nlohmann::json parse_json_bounded(std::string_view text, ErrorKind kind, const std::string& what,
                                  int max_depth = 32);

class JsonFields {
 public:
  // `object` must be a JSON object (null reads as an empty one); `path` is its own path ("" for
  // the document root), used in errors.
  JsonFields(const nlohmann::json& object, std::string path, ErrorKind kind);

  const std::string& path() const { return path_; }
  std::string path_of(const std::string& key) const;
  bool has(const std::string& key) const;  // present and not null

  int64_t integer(const std::string& key, int64_t min, int64_t max) const;
  int64_t integer(const std::string& key, int64_t min, int64_t max, int64_t fallback) const;
  uint64_t unsigned_integer(const std::string& key) const;  // 0 .. 2^64-1
  double number(const std::string& key, double min, double max) const;
  double number(const std::string& key, double min, double max, double fallback) const;
  std::optional<double> optional_number(const std::string& key, double min, double max) const;
  bool boolean(const std::string& key) const;
  bool boolean(const std::string& key, bool fallback) const;
  std::string string(const std::string& key, size_t max_length) const;
  std::string string(const std::string& key, size_t max_length, const std::string& fallback) const;
  // An array of strings (empty when absent and not required).
  std::vector<std::string> strings(const std::string& key, size_t max_items, size_t max_length,
                                   bool required = false) const;
  JsonFields object(const std::string& key) const;
  std::optional<JsonFields> optional_object(const std::string& key) const;
  // An array of objects, each with its own path ("stages[0]").
  std::vector<JsonFields> objects(const std::string& key, size_t max_items) const;
  // The raw value (must be present); for values handed on to another reader.
  const nlohmann::json& raw(const std::string& key) const;
  // Refuses keys other than `known` (request files: a misspelt key must not be ignored).
  void only_keys(const std::vector<std::string>& known) const;

  [[noreturn]] void fail(const std::string& key, const std::string& detail) const;

 private:
  const nlohmann::json& value(const std::string& key) const;  // present, or fail()

  const nlohmann::json& object_;
  std::string path_;
  ErrorKind kind_;
};

}  // namespace anagram::detail
