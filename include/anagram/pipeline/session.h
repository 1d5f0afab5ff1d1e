// anagram/pipeline/session.h: a bundle's models loaded once, and requests run on them.
//
// Basic usage (three calls):
//   auto session = anagram::Session::open(options);         // bundle, device, dtype, ...
//   anagram::Sample sample = session->generate(request);     // the pictures, in memory
//   anagram::write_sample("out", sample);                    // out/sample_000/
//   (io/sample_writer.h)
//
// A program that must refuse bad input before loading anything plans first, without models,
// and hands the session the plan it checked (and the manifest it read), so nothing is read or
// planned twice:
//   anagram::Manifest manifest = anagram::read_manifest(options.bundle);
//   anagram::GenerationPlan plan = anagram::plan_generation(request, manifest);  // cheap
//   auto session = anagram::Session::open(options, std::move(manifest),
//                                         anagram::SessionParts::for_plan(plan));
//   for (int i = 0; i < plan.request.num_samples; ++i)
//     anagram::write_sample("out", session->generate(plan, i));
//
// open() checks the bundle's file hashes, loads every model it needs (each checked for
// operators a model file may not use, and probed) and fails with a one-line anagram::Error
// before any work. A session then runs any number of requests, on several threads at once if
// need be; prompt embeddings are computed once per distinct prompt (optionally cached on disk
// across runs: pipeline/embeddings_cache.h).
//
// Where tensors live: the models, prompt states and everything inside generate() on the
// session's device (the text encoders, T5 and stage III's own, on text_device, their states
// moved to the device once per prompt); the Sample that generate() returns on the host
// (io/sample.h).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "anagram/io/sample.h"
#include "anagram/models/bundle.h"
#include "anagram/pipeline/plan.h"
#include "anagram/text/t5_tokenizer.h"

namespace anagram {

struct SessionOptions {
  std::string bundle = default_bundle_path();
  std::string device = "cpu";
  std::string dtype = "auto";  // the bundle's dtype
  // Where the T5 encoder runs ("" = device). T5-XXL needs about 9.5 GB in float16: "cpu" keeps
  // it off the GPU (it runs once per prompt).
  std::string text_device;
  // Free the text encoders once the prompts are encoded (each is reloaded if a later request
  // has new prompts). `anagram gen` encodes every prompt first and frees them.
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
  void apply_threads() const;  // sets both pools (for the calling thread's LibTorch pool)
  nlohmann::json to_json() const;
};

// Which models a session loads.
struct SessionParts {
  int stages = 0;  // the first N stages' models; 0: every stage the bundle has
  bool clip = true;
  static SessionParts for_plan(const GenerationPlan& plan);
};

struct Progress {
  int sample = 0;  // 0-based index in the request
  int num_samples = 1;
  int stage = 1;
  int num_stages = 1;
  int step = 0;  // steps done in this stage
  int num_steps = 0;
  double seconds = 0;  // elapsed in this stage
};

struct RunOptions {
  std::function<void(const Progress&)> progress;  // after every step
  // Polled between steps: when set, generate() stops with Error(kInterrupted).
  const std::atomic<bool>* interrupted = nullptr;
  std::string command_line;  // recorded in metadata.json
  // What this run reruns (gen --from-metadata), recorded in metadata.json as "rerun".
  nlohmann::json rerun;
  // Time the UNet calls and the anti-segregation steps on their own (synchronising the device
  // around them: for benchmarks only).
  bool profile = false;
};

// The request and session options recorded in a sample's metadata.json: running them again on
// the same bundle, device and thread count reproduces the sample's files byte for byte.
struct RecordedRun {
  GenerateRequest request;
  SessionOptions session;
  std::string manifest_sha256;  // of the bundle that made it ("" in old metadata)
};
// Throws Error(kInvalidArgument / kIo) naming the file and field.
RecordedRun read_recorded_run(const std::filesystem::path& metadata_file);

class Session {
 public:
  // Reads options.bundle's manifest, or takes `manifest` already read from it.
  static std::unique_ptr<Session> open(const SessionOptions& options,
                                       const SessionParts& parts = {});
  static std::unique_ptr<Session> open(const SessionOptions& options, Manifest manifest,
                                       const SessionParts& parts = {});
  ~Session();

  const Manifest& manifest() const { return manifest_; }
  const c10::Device& device() const { return device_; }
  c10::ScalarType dtype() const { return dtype_; }
  double load_seconds() const { return load_seconds_; }
  // As applied: the thread counts in effect, which metadata records.
  const SessionOptions& options() const { return options_; }

  // plan_generation() with the session's tokenizer.
  GenerationPlan plan(const GenerateRequest& request) const;

  // Makes sample `index` of the plan (seed: request seed + index), all its stages. Throws
  // anagram::Error (kInvalidArgument for a plan this session was not opened for,
  // kInterrupted when RunOptions::interrupted is set).
  Sample generate(const GenerationPlan& plan, int index = 0, const RunOptions& run = {});
  // plan(request), then its first sample.
  Sample generate(const GenerateRequest& request, const RunOptions& run = {});

  // (P, 77, D) float32 T5 states on the session's device, "" being the negative prompt.
  torch::Tensor encode(const std::vector<std::string>& prompts);
  // Frees the text encoder now (it is reloaded on demand).
  void release_text_encoder();
  bool text_encoder_loaded() const;

 private:
  struct Impl;
  Session(std::unique_ptr<Impl> impl, Manifest manifest, SessionOptions options, c10::Device device,
          c10::ScalarType dtype);

  std::unique_ptr<Impl> impl_;
  Manifest manifest_;
  SessionOptions options_;
  c10::Device device_;
  c10::ScalarType dtype_;
  double load_seconds_ = 0;
};

}  // namespace anagram
