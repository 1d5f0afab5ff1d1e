#include "core/json_fields.h"

#include <cmath>
#include <limits>

namespace anagram::detail {
namespace {

using nlohmann::json;

const json& null_json() {
  static const json null;
  return null;
}

std::string shown(const json& value) {
  std::string text = value.dump(-1, ' ', true, json::error_handler_t::replace);
  return text.size() > 40 ? text.substr(0, 40) + "..." : text;
}

}  // namespace

json parse_json_bounded(std::string_view text, ErrorKind kind, const std::string& what,
                        int max_depth) {
  bool too_deep = false;
  const json::parser_callback_t limit_depth = [&](int depth, json::parse_event_t, json&) {
    if (depth > max_depth) too_deep = true;
    return !too_deep;
  };
  try {
    json parsed = json::parse(text.begin(), text.end(), limit_depth);
    if (too_deep) {
      throw Error(kind, what + " nests deeper than " + std::to_string(max_depth) + " levels");
    }
    return parsed;
  } catch (const json::exception& e) {
    if (too_deep) {
      throw Error(kind, what + " nests deeper than " + std::to_string(max_depth) + " levels");
    }
    // nlohmann's messages are one line: "[json.exception.parse_error.101] parse error at ..."
    std::string message = e.what();
    const auto bracket = message.find("] ");
    if (bracket != std::string::npos) message = message.substr(bracket + 2);
    throw Error(kind, what + " is not valid JSON: " + message);
  }
}

JsonFields::JsonFields(const json& object, std::string path, ErrorKind kind)
    : object_(object.is_null() ? null_json() : object), path_(std::move(path)), kind_(kind) {
  if (!object_.is_null() && !object_.is_object()) {
    throw Error(kind_, path_.empty() ? "document" : path_,
                "must be a JSON object, got " + shown(object_));
  }
}

std::string JsonFields::path_of(const std::string& key) const {
  return path_.empty() ? key : path_ + "." + key;
}

bool JsonFields::has(const std::string& key) const {
  return object_.is_object() && object_.contains(key) && !object_.at(key).is_null();
}

void JsonFields::fail(const std::string& key, const std::string& detail) const {
  throw Error(kind_, key.empty() ? path_ : path_of(key), detail);
}

const json& JsonFields::value(const std::string& key) const {
  if (!has(key)) fail(key, "is missing");
  return object_.at(key);
}

const json& JsonFields::raw(const std::string& key) const { return value(key); }

int64_t JsonFields::integer(const std::string& key, int64_t min, int64_t max) const {
  const json& v = value(key);
  if (!v.is_number_integer()) fail(key, "must be an integer, got " + shown(v));
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(max)) {
    fail(key, "must be at most " + std::to_string(max) + ", got " + shown(v));
  }
  const int64_t n = v.get<int64_t>();
  if (n < min || n > max) {
    fail(key, "must be in " + std::to_string(min) + ".." + std::to_string(max) + ", got " +
                  std::to_string(n));
  }
  return n;
}

int64_t JsonFields::integer(const std::string& key, int64_t min, int64_t max,
                            int64_t fallback) const {
  return has(key) ? integer(key, min, max) : fallback;
}

uint64_t JsonFields::unsigned_integer(const std::string& key) const {
  const json& v = value(key);
  if (!v.is_number_integer()) fail(key, "must be an integer, got " + shown(v));
  if (!v.is_number_unsigned()) fail(key, "must not be negative, got " + shown(v));
  return v.get<uint64_t>();
}

double JsonFields::number(const std::string& key, double min, double max) const {
  const json& v = value(key);
  if (!v.is_number()) fail(key, "must be a number, got " + shown(v));
  const double x = v.get<double>();
  if (!std::isfinite(x) || x < min || x > max) {
    fail(key, "must be a number in [" + shown(json(min)) + ", " + shown(json(max)) + "], got " +
                  shown(v));
  }
  return x;
}

double JsonFields::number(const std::string& key, double min, double max, double fallback) const {
  return has(key) ? number(key, min, max) : fallback;
}

std::optional<double> JsonFields::optional_number(const std::string& key, double min,
                                                  double max) const {
  if (!has(key)) return std::nullopt;
  return number(key, min, max);
}

bool JsonFields::boolean(const std::string& key) const {
  const json& v = value(key);
  if (!v.is_boolean()) fail(key, "must be true or false, got " + shown(v));
  return v.get<bool>();
}

bool JsonFields::boolean(const std::string& key, bool fallback) const {
  return has(key) ? boolean(key) : fallback;
}

std::string JsonFields::string(const std::string& key, size_t max_length) const {
  const json& v = value(key);
  if (!v.is_string()) fail(key, "must be a string, got " + shown(v));
  const auto& s = v.get_ref<const std::string&>();
  if (s.size() > max_length) {
    fail(key, "is " + std::to_string(s.size()) + " bytes long; at most " +
                  std::to_string(max_length) + " are accepted");
  }
  return s;
}

std::string JsonFields::string(const std::string& key, size_t max_length,
                               const std::string& fallback) const {
  return has(key) ? string(key, max_length) : fallback;
}

std::vector<std::string> JsonFields::strings(const std::string& key, size_t max_items,
                                             size_t max_length, bool required) const {
  if (!has(key)) {
    if (required) fail(key, "is missing");
    return {};
  }
  const json& v = value(key);
  if (!v.is_array()) fail(key, "must be a list of strings, got " + shown(v));
  if (v.size() > max_items) {
    fail(key, "has " + std::to_string(v.size()) + " entries; at most " + std::to_string(max_items) +
                  " are accepted");
  }
  std::vector<std::string> out;
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string where = key + "[" + std::to_string(i) + "]";
    if (!v[i].is_string()) fail(where, "must be a string, got " + shown(v[i]));
    const auto& s = v[i].get_ref<const std::string&>();
    if (s.size() > max_length) {
      fail(where, "is " + std::to_string(s.size()) + " bytes long; at most " +
                      std::to_string(max_length) + " are accepted");
    }
    out.push_back(s);
  }
  return out;
}

JsonFields JsonFields::object(const std::string& key) const {
  return JsonFields(value(key), path_of(key), kind_);
}

std::optional<JsonFields> JsonFields::optional_object(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  return object(key);
}

std::vector<JsonFields> JsonFields::objects(const std::string& key, size_t max_items) const {
  const json& v = value(key);
  if (!v.is_array()) fail(key, "must be a list, got " + shown(v));
  if (v.empty() || v.size() > max_items) {
    fail(key,
         "must have 1.." + std::to_string(max_items) + " entries, got " + std::to_string(v.size()));
  }
  std::vector<JsonFields> out;
  for (size_t i = 0; i < v.size(); ++i) {
    out.emplace_back(v[i], path_of(key) + "[" + std::to_string(i) + "]", kind_);
  }
  return out;
}

void JsonFields::only_keys(const std::vector<std::string>& known) const {
  if (!object_.is_object()) return;
  for (const auto& [key, ignored] : object_.items()) {
    bool found = false;
    for (const auto& k : known) found = found || k == key;
    if (!found) {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      std::string name = key.size() > 40 ? key.substr(0, 40) + "..." : key;
      fail("", "unknown key '" + shown(json(name)).substr(1, shown(json(name)).size() - 2) +
                   "' (known: " + list + ")");
    }
  }
}

}  // namespace anagram::detail
