#include "anagram/pipeline/batch.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>
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

namespace anagram {

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

std::string line_error(int line, const Error& e) {
  return "line " + std::to_string(line) + ": " + (e.field().empty() ? "" : e.field() + ": ") +
         e.detail();
}

// Each existing part of ROOT/<out> must be a real folder: a symbolic link there could point
// anywhere, and a batch writes only inside its output folder.
void check_job_folder(const fs::path& root, const std::string& out) {
  fs::path path = root;
  for (const auto& part : fs::path(out)) {
    path /= part;
    struct stat st {};
    if (lstat(path.c_str(), &st) != 0) return;  // the rest is made by the batch
    if (S_ISLNK(st.st_mode)) {
      throw Error(ErrorKind::kInvalidArgument, "out",
                  "'" + printable(path.string()) +
                      "' is a symbolic link; a batch writes only inside its output folder");
    }
    if (!S_ISDIR(st.st_mode)) {
      throw Error(ErrorKind::kInvalidArgument, "out",
                  "'" + printable(path.string()) + "' is not a folder");
    }
  }
}

// summary.jsonl, appended one write() per line (a killed run leaves whole lines), never
// through a symbolic link, opened before any work so that a bad path is found then. It is
// also the run's lock: one process at a time appends to a summary (each shard has its own),
// so two runs of the same shard into one folder cannot both do the work. The kernel drops the
// lock when the process ends, however it ends.
class SummaryFile {
 public:
  explicit SummaryFile(const fs::path& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd_ < 0) {
      const std::string why = errno == ELOOP ? "is a symbolic link; refusing to append through it"
                                             : std::strerror(errno);
      throw Error(ErrorKind::kIo, "summary", "'" + printable(path.string()) + "': " + why);
    }
    if (flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd_);
      throw Error(ErrorKind::kInvalidArgument, "summary",
                  "another anagram batch is appending to '" + printable(path.string()) +
                      "' (the same shard into the same folder); wait for it, or use another "
                      "--out");
    }
  }
  ~SummaryFile() { ::close(fd_); }
  SummaryFile(const SummaryFile&) = delete;
  SummaryFile& operator=(const SummaryFile&) = delete;

  void append(const nlohmann::json& record) {
    const std::string text =
        record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    if (::write(fd_, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
      throw Error(ErrorKind::kRuntime,
                  "cannot append to '" + path_.string() + "': " + std::strerror(errno));
    }
  }

 private:
  fs::path path_;
  int fd_ = -1;
};

// Every job planned against its bundle (the one plan that later runs), before any model loads;
// each bundle's manifest and tokenizer are read once. Plans are kept for the shard's jobs only.
struct PlannedJobs {
  std::map<std::string, Manifest> manifests;
  std::map<std::string, SessionParts> parts;  // of the bundles the shard uses
  std::map<size_t, GenerationPlan> plans;     // job index -> plan
};

PlannedJobs plan_jobs(const std::vector<BatchJob>& jobs, const std::set<size_t>& used,
                      const std::string& default_bundle) {
  PlannedJobs planned;
  std::map<std::string, std::unique_ptr<T5Tokenizer>> tokenizers;
  for (size_t j = 0; j < jobs.size(); ++j) {
    const BatchJob& job = jobs[j];
    const std::string bundle = job.bundle.empty() ? default_bundle : job.bundle;
    try {
      if (!planned.manifests.count(bundle)) {
        const Manifest& m = planned.manifests.emplace(bundle, read_manifest(bundle)).first->second;
        tokenizers[bundle] = std::make_unique<T5Tokenizer>(load_t5_tokenizer(m));
      }
      GenerationPlan plan =
          plan_generation(job.request, planned.manifests.at(bundle), tokenizers.at(bundle).get());
      if (!used.count(j)) continue;
      SessionParts& p = planned.parts.try_emplace(bundle, SessionParts{1, false}).first->second;
      p.stages = std::max(p.stages, plan.num_stages());
      p.clip = p.clip || plan.needs_clip();
      planned.plans.emplace(j, std::move(plan));
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

// `count` tasks on `workers` threads that take them in order from a shared counter. The first
// interrupt (or unexpected fault) is rethrown after every worker has joined.
void run_workers(int workers, size_t count, const SessionOptions& session_options,
                 const std::atomic<bool>* interrupted, const std::function<void(size_t)>& task) {
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
        task(i);
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

// One batch run: the checks before work, then each bundle's samples on its session.
class BatchRun {
 public:
  BatchRun(const std::vector<BatchJob>& jobs, const BatchOptions& options,
           const BatchCallbacks& callbacks)
      : jobs_(jobs),
        options_(options),
        shared_(options.workers > 1 ? serialised(callbacks, callback_mutex_) : callbacks) {}

  BatchReport run(const std::vector<BatchSample>& samples) {
    // 1. Everything that can be wrong, before any model is loaded.
    std::set<size_t> used;
    for (const auto& sample : samples) used.insert(sample.job);
    parse_device(options_.session.device);
    planned_ = plan_jobs(jobs_, used, options_.session.bundle);
    check_output_dir(options_.root);
    prepare_output_dir(options_.root);
    summary_ = std::make_unique<SummaryFile>(options_.summary);

    // 2. What is left to do, grouped by bundle so that each bundle's models load once.
    std::map<std::string, std::vector<const BatchSample*>> todo;
    std::vector<std::string> order;
    for (const auto& sample : samples) {
      if (!still_to_make(sample)) continue;
      const BatchJob& job = jobs_.at(sample.job);
      const std::string bundle = job.bundle.empty() ? options_.session.bundle : job.bundle;
      if (!todo.count(bundle)) order.push_back(bundle);
      todo[bundle].push_back(&sample);
    }
    // 3. The samples; a failing one is reported and the rest go on.
    for (const auto& bundle : order) run_bundle(bundle, todo.at(bundle));
    return report_;
  }

 private:
  nlohmann::json record_of(const BatchSample& sample) const {
    const BatchJob& job = jobs_.at(sample.job);
    return {
        {"line", job.line}, {"out", job.out}, {"seed", sample.seed}, {"dir", sample.dir.string()}};
  }

  // Complete samples are skipped; a folder of that name that is not one is the user's, and so
  // is a job folder with a symbolic link or a file in its path: those samples fail, untouched.
  bool still_to_make(const BatchSample& sample) {
    nlohmann::json record = record_of(sample);
    try {
      check_job_folder(options_.root, jobs_.at(sample.job).out);
    } catch (const Error& e) {
      ++report_.failed;
      record["status"] = "failed";
      record["error"] = e.what();
      spdlog::error("line {}, seed {}: {}", jobs_.at(sample.job).line, sample.seed, e.what());
      summary_->append(record);
      return false;
    }
    struct stat st {};
    if (lstat(sample.dir.c_str(), &st) != 0) return true;
    if (sample_folder_complete(sample.dir)) {
      ++report_.skipped;
      record["status"] = "skipped";
    } else {
      ++report_.failed;
      record["status"] = "failed";
      record["error"] = "'" + sample.dir.string() +
                        "' exists but is not a complete sample; move it away to make this seed";
      spdlog::error("{}", record["error"].get<std::string>());
    }
    summary_->append(record);
    return false;
  }

  void run_bundle(const std::string& bundle, const std::vector<const BatchSample*>& mine) {
    SessionOptions session_options = options_.session;
    session_options.bundle = bundle;
    if (options_.workers > 1 && session_options.threads == 0) {
      session_options.threads = 1;  // one core per worker (BLAS threads follow: apply_threads)
    }
    const std::unique_ptr<Session> session =
        Session::open(session_options, planned_.manifests.at(bundle), planned_.parts.at(bundle));
    run_workers(options_.workers, mine.size(), session_options, shared_.run.interrupted,
                [&](size_t i) { run_one(*session, *mine[i]); });
  }

  void run_one(Session& session, const BatchSample& sample) {
    const auto start = Clock::now();
    nlohmann::json record = record_of(sample);
    try {
      GenerationPlan plan = planned_.plans.at(sample.job);
      plan.request.seed = sample.seed;
      const Sample made = session.generate(plan, 0, shared_.run);
      const fs::path folder = sample.dir.parent_path();
      {
        const std::lock_guard<std::mutex> lock(report_mutex_);
        check_job_folder(options_.root, jobs_.at(sample.job).out);  // again, just before use
        prepare_output_dir(folder);
      }
      const fs::path dir = write_sample(folder, made, sample.dir.filename().string());
      record["status"] = "done";
      if (shared_.sample_done) shared_.sample_done(dir);
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::kInterrupted) throw;
      record["status"] = "failed";
      record["error"] = e.what();
    } catch (const std::exception& e) {
      record["status"] = "failed";
      record["error"] = describe_exception(e);
    }
    if (record["status"] == "failed") {
      spdlog::error("line {}, seed {}: {}", jobs_.at(sample.job).line, sample.seed,
                    record["error"].get<std::string>());
    }
    record["seconds"] = std::chrono::duration<double>(Clock::now() - start).count();
    const std::lock_guard<std::mutex> lock(report_mutex_);
    ++(record["status"] == "done" ? report_.done : report_.failed);
    summary_->append(record);
  }

  const std::vector<BatchJob>& jobs_;
  const BatchOptions& options_;
  std::mutex callback_mutex_;  // the caller's callbacks
  std::mutex report_mutex_;    // the report, the summary and the job folders
  const BatchCallbacks shared_;
  PlannedJobs planned_;
  std::unique_ptr<SummaryFile> summary_;
  BatchReport report_;
};

}  // namespace

BatchReport run_batch(const std::vector<BatchJob>& jobs, const std::vector<BatchSample>& samples,
                      const BatchOptions& options, const BatchCallbacks& callbacks) {
  if (options.workers < 1 || options.workers > BatchOptions::kMaxWorkers) {
    throw Error(ErrorKind::kInvalidArgument, "workers",
                "must be in 1.." + std::to_string(BatchOptions::kMaxWorkers) + ", got " +
                    std::to_string(options.workers));
  }
  options.session.validate();
  BatchRun run(jobs, options, callbacks);
  return run.run(samples);
}

}  // namespace anagram
