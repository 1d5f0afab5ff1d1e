// anagram/pipeline/session.h: a bundle's models loaded once, and requests run on them.
//
// Basic usage:
//   anagram::SessionOptions options;                     // bundle, device, dtype, ...
//   anagram::Manifest manifest = anagram::read_manifest(options.bundle);
//   anagram::GenerationPlan plan = anagram::plan_generation(request, manifest, device);  // cheap
//   auto session = anagram::Session::open(options, anagram::SessionParts::for_plan(plan));
//   anagram::prepare_output_dir("out");
//   anagram::GenerateResult result = session->generate(plan, "out", {});
//
// open() checks the bundle's file hashes, loads every model it needs (each checked for
// operators a model file may not use, and probed) and fails with a one-line anagram::Error
// before any work. A session then runs any number of requests; prompt embeddings are computed
// once per distinct prompt (optionally cached on disk across runs).
#pragma once

#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "anagram/models/bundle.h"
#include "anagram/models/noise_aware_clip.h"
#include "anagram/models/text_encoder.h"
#include "anagram/models/unet.h"
#include "anagram/pipeline/plan.h"

namespace anagram {

struct SessionOptions {
  std::string bundle = default_bundle_path();
  std::string device = "cpu";
  std::string dtype = "auto";  // the bundle's dtype
  // Where the T5 encoder runs ("" = device). T5-XXL needs about 9.5 GB in float16: "cpu" keeps
  // it off the GPU (it runs once per prompt).
  std::string text_device;
  // Free the text encoder once the prompts are encoded (it is reloaded if a later request has
  // new prompts). `anagram gen` encodes every prompt first and frees it.
  bool release_text_encoder = false;
  // A folder for prompt embeddings, keyed by the bundle's text-encoder hash and the prompt, so
  // later runs skip the encoder. "" = no cache.
  std::filesystem::path embeddings_cache;
  // CPU threads of LibTorch's intra-op pool (0: LibTorch's default), and of the BLAS library's
  // own pool (0: as `threads` when that is set, else the BLAS's default). Both are recorded in
  // metadata: the same seed gives the same bytes for the same counts (core/threads.h).
  int threads = 0;
  int blas_threads = 0;

  void validate() const;       // throws Error(kInvalidArgument) naming the field
  void apply_threads() const;  // sets both pools (process-wide)
  nlohmann::json to_json() const;
};

// Which models a session loads.
struct SessionParts {
  bool stage2 = true;
  bool clip = true;
  static SessionParts for_plan(const GenerationPlan& plan);
};

struct Progress {
  int sample = 0;  // 0-based
  int num_samples = 0;
  int stage = 1;
  int num_stages = 1;
  int step = 0;  // steps done in this stage
  int num_steps = 0;
  double seconds = 0;  // elapsed in this stage
};

struct SampleResult {
  std::filesystem::path dir;
  uint64_t seed = 0;
  double seconds = 0;
};

struct RunCallbacks {
  std::function<void(const Progress&)> progress;
  // Called as each sample folder is committed (scripts read the paths from stdout as they come).
  std::function<void(const SampleResult&)> sample_done;
  // Polled between steps: when set, the run stops with Error(kInterrupted) and leaves no
  // partial sample.
  const std::atomic<bool>* interrupted = nullptr;
  std::string command_line;  // recorded in metadata.json
  // The folder name of the sample with this seed ("" or unset: the next free sample_NNN).
  std::function<std::string(uint64_t seed)> folder_name;
  // Time the UNet calls and the anti-segregation step separately (synchronising the device
  // around them: for benchmarks only).
  bool profile = false;
};

struct StageTiming {
  int stage = 1;
  int steps = 0;            // per sample
  double seconds = 0;       // all samples
  double unet_seconds = 0;  // with profile: inside UNet calls of the sampling loop
  int64_t unet_calls = 0;
  double antiseg_seconds = 0;  // with profile: the anti-segregation steps
  int64_t antiseg_calls = 0;
  double peak_device_mib = 0;  // CUDA: peak allocated; CPU: the process's peak RSS
};

struct GenerateResult {
  std::vector<SampleResult> samples;
  std::vector<StageTiming> stages;
  double encode_seconds = 0;
};

// The request and session options recorded in a sample's metadata.json: running them again on
// the same bundle, device and thread count reproduces the sample's files byte for byte.
struct RecordedRun {
  GenerateRequest request;
  SessionOptions session;
};
// Throws Error(kInvalidArgument / kIo) naming the file and field.
RecordedRun read_recorded_run(const std::filesystem::path& metadata_file);

class Session {
 public:
  static std::unique_ptr<Session> open(const SessionOptions& options,
                                       const SessionParts& parts = {});
  ~Session();

  const Manifest& manifest() const { return manifest_; }
  const c10::Device& device() const { return device_; }
  c10::ScalarType dtype() const { return dtype_; }
  double load_seconds() const { return load_seconds_; }
  const SessionOptions& options() const { return options_; }

  GenerationPlan plan(const GenerateRequest& request) const;

  // Runs the plan's samples into `out` (which must exist: prepare_output_dir). Throws
  // anagram::Error; a sample is either written whole or not at all.
  GenerateResult generate(const GenerationPlan& plan, const std::filesystem::path& out,
                          const RunCallbacks& callbacks = {});

  // (P, 77, D) float32 T5 states on the session's device, "" being the negative prompt.
  torch::Tensor encode(const std::vector<std::string>& prompts);
  // Frees the text encoder now (it is reloaded on demand).
  void release_text_encoder();
  bool text_encoder_loaded() const;

 private:
  struct Impl;
  explicit Session(std::unique_ptr<Impl> impl, Manifest manifest, SessionOptions options,
                   c10::Device device, c10::ScalarType dtype);

  std::unique_ptr<Impl> impl_;
  Manifest manifest_;
  SessionOptions options_;
  c10::Device device_;
  c10::ScalarType dtype_;
  double load_seconds_ = 0;
};

}  // namespace anagram
