#include "anagram/pipeline/batch_file.h"

#include <cstdlib>
#include <fstream>
#include <map>

#include "anagram/core/error.h"
#include "anagram/core/error_text.h"
#include "core/json_fields.h"

namespace anagram {

namespace fs = std::filesystem;

namespace {

constexpr uintmax_t kMaxFileBytes = 64u << 20;
constexpr size_t kMaxLines = 100000;
constexpr size_t kMaxLineBytes = 1u << 20;
constexpr size_t kMaxSeedsPerJob = 100000;
constexpr size_t kMaxFolderName = 255;  // NAME_MAX of a component
constexpr size_t kMaxFolderPath = 1024;

std::string line_error(int line, const Error& e) {
  return "line " + std::to_string(line) + ": " + (e.field().empty() ? "" : e.field() + ": ") +
         e.detail();
}

// A job folder, normalised: relative, inside the batch's output folder ("a", "./a" and "a/"
// are the same folder), printable, and short enough for the file system. Whether its parts
// are symbolic links is checked when the batch runs (batch.h).
std::string job_folder(const std::string& out) {
  const auto refuse = [&](const std::string& why) -> std::string {
    throw Error(ErrorKind::kInvalidArgument, "out", why + ", got '" + quote_for_error(out) + "'");
  };
  for (unsigned char c : out) {
    if (c < 0x20 || c == 0x7f) refuse("must not hold control characters (newline, NUL, ...)");
  }
  fs::path p = fs::path(out).lexically_normal();
  if (!p.empty() && p.filename().empty()) p = p.parent_path();  // "a/" -> "a"
  if (out.empty() || p.empty() || p == "." || p.is_absolute()) {
    refuse("must be a folder relative to the batch's output folder");
  }
  for (const auto& part : p) {
    if (part == "..") refuse("must not leave the batch's output folder ('..')");
    if (part.string().size() > kMaxFolderName) refuse("has a part longer than 255 bytes");
  }
  if (p.string().size() > kMaxFolderPath) refuse("is longer than 1024 bytes");
  return p.string();
}

// The job's seeds: a list, or seed + num_samples. Refused before anything is made when the
// job would take the batch past its sample budget (`left`).
std::vector<uint64_t> job_seeds(const detail::JsonFields& f, const GenerateRequest& request,
                                uint64_t left) {
  const auto over_budget = [&](uint64_t count) {
    if (count > left) {
      throw Error(ErrorKind::kInvalidArgument, "seeds",
                  "the batch would make more than its limit of samples (" + std::to_string(left) +
                      " left for this line; anagram batch --max-samples raises it)");
    }
  };
  std::vector<uint64_t> seeds;
  if (!f.has("seeds")) {
    over_budget(static_cast<uint64_t>(request.num_samples));
    for (int i = 0; i < request.num_samples; ++i) {
      seeds.push_back(request.seed + static_cast<uint64_t>(i));
    }
    return seeds;
  }
  if (f.has("seed") || f.has("num_samples")) {
    throw Error(ErrorKind::kInvalidArgument, "seeds",
                "give either seeds or seed/num_samples, not both");
  }
  const nlohmann::json& list = f.raw("seeds");
  if (!list.is_array() || list.empty() || list.size() > kMaxSeedsPerJob) {
    throw Error(ErrorKind::kInvalidArgument, "seeds",
                "must be a list of 1.." + std::to_string(kMaxSeedsPerJob) + " seeds");
  }
  over_budget(list.size());
  for (size_t i = 0; i < list.size(); ++i) {
    if (!list[i].is_number_unsigned()) {
      throw Error(ErrorKind::kInvalidArgument, "seeds[" + std::to_string(i) + "]",
                  "must be a whole number in 0..2^64-1");
    }
    seeds.push_back(list[i].get<uint64_t>());
  }
  return seeds;
}

BatchJob read_job(const nlohmann::json& line_json, const nlohmann::json& defaults, int line,
                  uint64_t left) {
  if (!line_json.is_object()) {
    throw Error(ErrorKind::kInvalidArgument, "", "must be a JSON object");
  }
  nlohmann::json merged = defaults;
  for (const auto& [key, value] : line_json.items()) merged[key] = value;
  const detail::JsonFields f(merged, "", ErrorKind::kInvalidArgument);
  BatchJob job;
  job.line = line;
  job.out = job_folder(f.string("out", kMaxFolderPath, "job_" + std::to_string(line)));
  job.bundle = f.string("bundle", 4096, "");
  nlohmann::json request = merged;
  for (const char* key : {"out", "bundle", "seeds"}) request.erase(key);
  job.request = GenerateRequest::from_json(request);
  job.request.validate();
  job.seeds = job_seeds(f, job.request, left);
  job.request.num_samples = 1;
  return job;
}

std::string read_bounded(const fs::path& path) {
  std::error_code ec;
  const uintmax_t size = fs::file_size(path, ec);
  if (ec)
    throw Error(ErrorKind::kIo, "jobs", "cannot read '" + path.string() + "': " + ec.message());
  if (size > kMaxFileBytes) {
    throw Error(ErrorKind::kInvalidArgument, "jobs",
                "'" + path.string() + "' is " + std::to_string(size) + " bytes; at most " +
                    std::to_string(kMaxFileBytes) + " are accepted");
  }
  std::ifstream in(path, std::ios::binary);
  std::string bytes(static_cast<size_t>(size), '\0');
  if (!in.read(bytes.data(), static_cast<std::streamsize>(size))) {
    throw Error(ErrorKind::kIo, "jobs", "cannot read '" + path.string() + "'");
  }
  return bytes;
}

}  // namespace

std::string seed_folder(uint64_t seed) {
  char name[40];
  std::snprintf(name, sizeof name, "seed_%06llu", static_cast<unsigned long long>(seed));
  return name;
}

BatchFile read_batch_file(const fs::path& path, const nlohmann::json& defaults,
                          uint64_t max_samples) {
  if (!defaults.is_object()) {
    throw Error(ErrorKind::kInvalidArgument, "defaults", "must be a JSON object");
  }
  const std::string bytes = read_bounded(path);
  BatchFile file;
  std::map<std::pair<std::string, uint64_t>, int> made_by;  // (out, seed) -> line
  uint64_t planned = 0;
  size_t start = 0;
  int line = 0;
  while (start < bytes.size()) {
    size_t end = bytes.find('\n', start);
    if (end == std::string::npos) end = bytes.size();
    ++line;
    const std::string text = bytes.substr(start, end - start);
    start = end + 1;
    if (static_cast<size_t>(line) > kMaxLines) {
      file.errors.push_back("line " + std::to_string(line) + ": more than " +
                            std::to_string(kMaxLines) + " lines");
      break;
    }
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;  // blank line
    try {
      if (text.size() > kMaxLineBytes) {
        throw Error(ErrorKind::kInvalidArgument, "", "is longer than 1 MiB");
      }
      const nlohmann::json j =
          detail::parse_json_bounded(text, ErrorKind::kInvalidArgument, "the line");
      BatchJob job = read_job(j, defaults, line, max_samples - planned);
      for (uint64_t seed : job.seeds) {
        const auto [it, fresh] = made_by.emplace(std::make_pair(job.out, seed), line);
        if (!fresh) {
          throw Error(ErrorKind::kInvalidArgument, "seeds",
                      "sample " + seed_folder(seed) + " of '" + job.out +
                          "' is also made by line " + std::to_string(it->second));
        }
      }
      planned += job.seeds.size();
      file.jobs.push_back(std::move(job));
    } catch (const Error& e) {
      file.errors.push_back(line_error(line, e));
    }
  }
  return file;
}

std::vector<BatchSample> shard_samples(const std::vector<BatchJob>& jobs, const fs::path& root,
                                       int index, int count) {
  if (count < 1 || index < 0 || index >= count) {
    throw Error(ErrorKind::kInvalidArgument, "shard",
                "needs 0 <= I < N, got " + std::to_string(index) + "/" + std::to_string(count));
  }
  std::vector<BatchSample> mine;
  uint64_t k = 0;
  for (size_t j = 0; j < jobs.size(); ++j) {
    for (uint64_t seed : jobs[j].seeds) {
      if (k++ % static_cast<uint64_t>(count) == static_cast<uint64_t>(index)) {
        mine.push_back({j, seed, root / jobs[j].out / seed_folder(seed)});
      }
    }
  }
  return mine;
}

std::pair<int, int> parse_shard(const std::string& text) {
  const auto slash = text.find('/');
  const auto number = [&](const std::string& part) {
    if (part.empty() || part.size() > 6 ||
        part.find_first_not_of("0123456789") != std::string::npos) {
      throw Error(ErrorKind::kInvalidArgument, "shard",
                  "must be I/N (shard I of N, from 0), got '" + quote_for_error(text) + "'");
    }
    return std::stoi(part);
  };
  if (slash == std::string::npos) number("");
  const int index = number(text.substr(0, slash)), count = number(text.substr(slash + 1));
  if (count < 1 || index >= count) {
    throw Error(ErrorKind::kInvalidArgument, "shard",
                "needs 0 <= I < N, got '" + quote_for_error(text) + "'");
  }
  return {index, count};
}

namespace {

// A whole number from the environment, or an error naming the variable (never a silent 0).
long env_number(const char* name, const char* value) {
  const std::string text = value;
  if (text.empty() || text.size() > 9 ||
      text.find_first_not_of("0123456789") != std::string::npos) {
    throw Error(ErrorKind::kInvalidArgument, "shard",
                std::string(name) + " must be a whole number, got '" + quote_for_error(text) + "'");
  }
  return std::atol(value);
}

}  // namespace

std::pair<int, int> slurm_shard() {
  const char* id = std::getenv("SLURM_ARRAY_TASK_ID");
  const char* count = std::getenv("SLURM_ARRAY_TASK_COUNT");
  if (!id || !count) return {0, 1};
  const char* min = std::getenv("SLURM_ARRAY_TASK_MIN");
  const long first = min ? env_number("SLURM_ARRAY_TASK_MIN", min) : 0;
  const long index = env_number("SLURM_ARRAY_TASK_ID", id) - first;
  const long n = env_number("SLURM_ARRAY_TASK_COUNT", count);
  if (n < 1 || index < 0 || index >= n) {
    throw Error(ErrorKind::kInvalidArgument, "shard",
                std::string("SLURM_ARRAY_TASK_ID ") + id + " is not in the array of " + count +
                    " tasks (from " + std::to_string(first) + ")");
  }
  return {static_cast<int>(index), static_cast<int>(n)};
}

}  // namespace anagram
