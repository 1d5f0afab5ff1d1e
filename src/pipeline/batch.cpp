#include "anagram/pipeline/batch.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "anagram/core/device.h"
#include "anagram/core/error.h"
#include "anagram/core/error_text.h"
#include "anagram/io/output.h"
#include "anagram/io/sample_writer.h"
#include "anagram/models/text_encoder.h"
#include "core/json_fields.h"

namespace anagram {

namespace fs = std::filesystem;

namespace {

constexpr uintmax_t kMaxFileBytes = 64u << 20;
constexpr size_t kMaxLines = 100000;
constexpr size_t kMaxLineBytes = 1u << 20;
constexpr size_t kMaxSeedsPerJob = 100000;

std::string line_error(int line, const Error& e) {
  return "line " + std::to_string(line) + ": " + (e.field().empty() ? "" : e.field() + ": ") +
         e.detail();
}

// A job folder must stay inside the batch's output folder.
void check_out(const std::string& out) {
  const fs::path p(out);
  if (out.empty() || p.is_absolute()) {
    throw Error(ErrorKind::kInvalidArgument, "out",
                "must be a folder relative to the batch's output folder, got '" +
                    quote_for_error(out) + "'");
  }
  for (const auto& part : p) {
    if (part == "..") {
      throw Error(
          ErrorKind::kInvalidArgument, "out",
          "must not leave the batch's output folder ('..'), got '" + quote_for_error(out) + "'");
    }
  }
}

BatchJob read_job(const nlohmann::json& line_json, const nlohmann::json& defaults, int line) {
  if (!line_json.is_object()) {
    throw Error(ErrorKind::kInvalidArgument, "", "must be a JSON object");
  }
  nlohmann::json merged = defaults;
  for (const auto& [key, value] : line_json.items()) merged[key] = value;
  const detail::JsonFields f(merged, "", ErrorKind::kInvalidArgument);
  BatchJob job;
  job.line = line;
  job.out = f.string("out", 255, "job_" + std::to_string(line));
  check_out(job.out);
  job.bundle = f.string("bundle", 4096, "");
  std::vector<uint64_t> seeds;
  if (f.has("seeds")) {
    if (f.has("seed") || f.has("num_samples")) {
      throw Error(ErrorKind::kInvalidArgument, "seeds",
                  "give either seeds or seed/num_samples, not both");
    }
    const nlohmann::json& list = f.raw("seeds");
    if (!list.is_array() || list.empty() || list.size() > kMaxSeedsPerJob) {
      throw Error(ErrorKind::kInvalidArgument, "seeds",
                  "must be a list of 1.." + std::to_string(kMaxSeedsPerJob) + " seeds");
    }
    for (size_t i = 0; i < list.size(); ++i) {
      if (!list[i].is_number_unsigned()) {
        throw Error(ErrorKind::kInvalidArgument, "seeds[" + std::to_string(i) + "]",
                    "must be a whole number in 0..2^64-1");
      }
      seeds.push_back(list[i].get<uint64_t>());
    }
  }
  nlohmann::json request = merged;
  for (const char* key : {"out", "bundle", "seeds"}) request.erase(key);
  job.request = GenerateRequest::from_json(request);
  job.request.validate();
  if (seeds.empty()) {
    for (int i = 0; i < job.request.num_samples; ++i) {
      seeds.push_back(job.request.seed + static_cast<uint64_t>(i));
    }
  }
  job.seeds = seeds;
  job.request.num_samples = 1;
  return job;
}

std::string seed_folder(uint64_t seed) {
  char name[40];
  std::snprintf(name, sizeof name, "seed_%06llu", static_cast<unsigned long long>(seed));
  return name;
}

void append_line(const fs::path& file, const nlohmann::json& record) {
  // One write() per line with O_APPEND: a killed run leaves whole lines only.
  const std::string text =
      record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(ErrorKind::kIo, "cannot write '" + file.string() + "'");
  const ssize_t written = ::write(fd, text.data(), text.size());
  ::close(fd);
  if (written != static_cast<ssize_t>(text.size())) {
    throw Error(ErrorKind::kIo, "cannot write '" + file.string() + "'");
  }
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

BatchFile read_batch_file(const fs::path& path, const nlohmann::json& defaults) {
  if (!defaults.is_object()) {
    throw Error(ErrorKind::kInvalidArgument, "defaults", "must be a JSON object");
  }
  const std::string bytes = read_bounded(path);
  BatchFile file;
  std::map<std::pair<std::string, uint64_t>, int> made_by;  // (out, seed) -> line
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
      BatchJob job = read_job(j, defaults, line);
      for (uint64_t seed : job.seeds) {
        const auto [it, fresh] = made_by.emplace(std::make_pair(job.out, seed), line);
        if (!fresh) {
          throw Error(ErrorKind::kInvalidArgument, "seeds",
                      "sample " + seed_folder(seed) + " of '" + job.out +
                          "' is also made by line " + std::to_string(it->second));
        }
      }
      file.jobs.push_back(std::move(job));
    } catch (const Error& e) {
      file.errors.push_back(line_error(line, e));
    }
  }
  return file;
}

std::vector<BatchSample> expand(const std::vector<BatchJob>& jobs, const fs::path& root) {
  std::vector<BatchSample> samples;
  for (size_t j = 0; j < jobs.size(); ++j) {
    for (uint64_t seed : jobs[j].seeds) {
      samples.push_back({j, seed, root / jobs[j].out / seed_folder(seed)});
    }
  }
  return samples;
}

std::vector<BatchSample> shard(const std::vector<BatchSample>& samples, int index, int count) {
  if (count < 1 || index < 0 || index >= count) {
    throw Error(ErrorKind::kInvalidArgument, "shard",
                "needs 0 <= I < N, got " + std::to_string(index) + "/" + std::to_string(count));
  }
  std::vector<BatchSample> mine;
  for (size_t k = 0; k < samples.size(); ++k) {
    if (static_cast<int>(k % static_cast<size_t>(count)) == index) mine.push_back(samples[k]);
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

std::pair<int, int> slurm_shard() {
  const char* id = std::getenv("SLURM_ARRAY_TASK_ID");
  const char* count = std::getenv("SLURM_ARRAY_TASK_COUNT");
  if (!id || !count) return {0, 1};
  const char* min = std::getenv("SLURM_ARRAY_TASK_MIN");
  const long first = min ? std::atol(min) : 0;
  const long index = std::atol(id) - first;
  const long n = std::atol(count);
  if (n < 1 || index < 0 || index >= n) {
    throw Error(ErrorKind::kInvalidArgument, "shard",
                std::string("SLURM_ARRAY_TASK_ID ") + id + " is not in the array of " + count +
                    " tasks (from " + std::to_string(first) + ")");
  }
  return {static_cast<int>(index), static_cast<int>(n)};
}

namespace {

// Every job planned against its bundle (the one plan that later runs), before any model loads;
// each bundle's manifest and tokenizer are read once.
struct PlannedJobs {
  std::map<std::string, Manifest> manifests;
  std::map<std::string, SessionParts> parts;
  std::vector<GenerationPlan> plans;  // per job
};

PlannedJobs plan_jobs(const std::vector<BatchJob>& jobs, const std::string& default_bundle) {
  PlannedJobs planned;
  std::map<std::string, std::unique_ptr<T5Tokenizer>> tokenizers;
  for (const auto& job : jobs) {
    const std::string bundle = job.bundle.empty() ? default_bundle : job.bundle;
    try {
      if (!planned.manifests.count(bundle)) {
        const Manifest& m = planned.manifests.emplace(bundle, read_manifest(bundle)).first->second;
        tokenizers[bundle] = std::make_unique<T5Tokenizer>(load_t5_tokenizer(m));
      }
      planned.plans.push_back(
          plan_generation(job.request, planned.manifests.at(bundle), tokenizers.at(bundle).get()));
      const GenerationPlan& plan = planned.plans.back();
      SessionParts& p = planned.parts.try_emplace(bundle, SessionParts{1, false}).first->second;
      p.stages = std::max(p.stages, plan.num_stages());
      p.clip = p.clip || plan.needs_clip();
    } catch (const Error& e) {
      throw Error(e.kind(), "", line_error(job.line, e));
    }
  }
  return planned;
}

// The caller's callbacks, called one at a time when several workers run.
BatchCallbacks serialised(const BatchCallbacks& callbacks, std::mutex& mutex) {
  BatchCallbacks shared = callbacks;
  if (callbacks.run.progress) {
    shared.run.progress = [&callbacks, &mutex](const Progress& p) {
      const std::lock_guard<std::mutex> lock(mutex);
      callbacks.run.progress(p);
    };
  }
  if (callbacks.sample_done) {
    shared.sample_done = [&callbacks, &mutex](const fs::path& dir) {
      const std::lock_guard<std::mutex> lock(mutex);
      callbacks.sample_done(dir);
    };
  }
  return shared;
}

// One bundle's samples on its one session: `workers` threads take them in file order from a
// shared counter. The first interrupt (or unexpected fault) is rethrown after every worker
// has joined.
void run_workers(int workers, size_t count, const SessionOptions& session_options,
                 const std::atomic<bool>* interrupted, const std::function<void(size_t)>& run_one) {
  std::atomic<size_t> next{0};
  std::atomic<bool> stopping{false};
  std::mutex mutex;
  std::exception_ptr stopped_by;
  const auto work = [&] {
    // LibTorch's intra-op setting is per thread (OpenMP): a new thread starts at the process
    // default, so each worker sets it before its first sample.
    session_options.apply_threads();
    try {
      while (!stopping && !(interrupted && interrupted->load())) {
        const size_t i = next++;
        if (i >= count) return;
        run_one(i);
      }
    } catch (...) {
      const std::lock_guard<std::mutex> lock(mutex);
      if (!stopped_by) stopped_by = std::current_exception();
      stopping = true;
    }
  };
  const size_t threads = std::min<size_t>(static_cast<size_t>(workers), count);
  std::vector<std::thread> pool;
  for (size_t w = 1; w < threads; ++w) pool.emplace_back(work);
  work();  // the calling thread is worker 0
  for (auto& t : pool) t.join();
  if (stopped_by) std::rethrow_exception(stopped_by);
  if (interrupted && interrupted->load()) throw Error(ErrorKind::kInterrupted, "interrupted");
}

}  // namespace

BatchReport run_batch(const std::vector<BatchJob>& jobs, const std::vector<BatchSample>& samples,
                      const BatchOptions& options, const BatchCallbacks& callbacks) {
  using Clock = std::chrono::steady_clock;
  if (options.workers < 1 || options.workers > BatchOptions::kMaxWorkers) {
    throw Error(ErrorKind::kInvalidArgument, "workers",
                "must be in 1.." + std::to_string(BatchOptions::kMaxWorkers) + ", got " +
                    std::to_string(options.workers));
  }
  options.session.validate();
  // 1. Every job against its bundle, before any model is loaded.
  parse_device(options.session.device);
  PlannedJobs planned = plan_jobs(jobs, options.session.bundle);
  check_output_dir(options.root);

  // 2. What is left to do, grouped by bundle so that each bundle's models load once.
  BatchReport report;
  std::map<std::string, std::vector<const BatchSample*>> todo;
  std::vector<std::string> order;
  prepare_output_dir(options.root);
  for (const auto& sample : samples) {
    std::error_code ec;
    const BatchJob& job = jobs.at(sample.job);
    if (fs::exists(sample.dir, ec)) {
      ++report.skipped;
      append_line(options.summary, {{"status", "skipped"},
                                    {"line", job.line},
                                    {"out", job.out},
                                    {"seed", sample.seed},
                                    {"dir", sample.dir.string()}});
      continue;
    }
    const std::string bundle = job.bundle.empty() ? options.session.bundle : job.bundle;
    if (!todo.count(bundle)) order.push_back(bundle);
    todo[bundle].push_back(&sample);
  }

  // 3. The samples; a failing one is reported and the rest go on.
  std::mutex report_mutex;    // the report, the summary and the job folders
  std::mutex callback_mutex;  // the caller's callbacks
  const BatchCallbacks shared =
      options.workers > 1 ? serialised(callbacks, callback_mutex) : callbacks;
  const auto run_one = [&](Session& session, const BatchSample& sample) {
    const BatchJob& job = jobs.at(sample.job);
    const auto start = Clock::now();
    nlohmann::json record = {
        {"line", job.line}, {"out", job.out}, {"seed", sample.seed}, {"dir", sample.dir.string()}};
    try {
      GenerationPlan plan = planned.plans.at(sample.job);
      plan.request.seed = sample.seed;
      plan.request.num_samples = 1;
      const Sample made = session.generate(plan, 0, shared.run);
      const fs::path folder = sample.dir.parent_path();
      {
        const std::lock_guard<std::mutex> lock(report_mutex);
        prepare_output_dir(folder);
      }
      const fs::path dir = write_sample(folder, made, sample.dir.filename().string());
      record["status"] = "done";
      if (shared.sample_done) shared.sample_done(dir);
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::kInterrupted) throw;
      record["status"] = "failed";
      record["error"] = e.what();
      spdlog::error("line {}, seed {}: {}", job.line, sample.seed, e.what());
    } catch (const std::exception& e) {
      record["status"] = "failed";
      record["error"] = describe_exception(e);
      spdlog::error("line {}, seed {}: {}", job.line, sample.seed, describe_exception(e));
    }
    record["seconds"] = std::chrono::duration<double>(Clock::now() - start).count();
    const std::lock_guard<std::mutex> lock(report_mutex);
    ++(record["status"] == "done" ? report.done : report.failed);
    append_line(options.summary, record);
  };

  for (const auto& bundle : order) {
    SessionOptions session_options = options.session;
    session_options.bundle = bundle;
    if (options.workers > 1 && session_options.threads == 0) {
      session_options.threads = 1;  // one core per worker (BLAS threads follow: apply_threads)
    }
    const std::unique_ptr<Session> session =
        Session::open(session_options, planned.manifests.at(bundle), planned.parts.at(bundle));
    const std::vector<const BatchSample*>& mine = todo.at(bundle);
    run_workers(options.workers, mine.size(), session_options, shared.run.interrupted,
                [&](size_t i) { run_one(*session, *mine[i]); });
  }
  return report;
}

}  // namespace anagram
