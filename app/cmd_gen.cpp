// anagram gen: make visual anagrams.
#include <ATen/Parallel.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>

#include "anagram/core/device.h"
#include "anagram/core/error_text.h"
#include "anagram/io/output.h"
#include "anagram/pipeline/session.h"
#include "commands.h"

namespace anagram::cli {
namespace {

// One progress line on stderr, redrawn in place on a terminal; a line per 10% otherwise.
class ProgressDisplay {
 public:
  explicit ProgressDisplay(bool enabled) : enabled_(enabled), tty_(isatty(STDERR_FILENO)) {}

  void update(const Progress& p) {
    if (!enabled_) return;
    const int percent = 100 * p.step / p.num_steps;
    if (!tty_ && percent / 10 == last_decile_ && p.step != p.num_steps) return;
    last_decile_ = percent / 10;
    constexpr int kWidth = 30;
    const int filled = kWidth * p.step / p.num_steps;
    std::fprintf(stderr, "%ssample %d/%d stage %d/%d [%.*s%*s] step %d/%d  %.2f s/step%s",
                 tty_ ? "\r" : "", p.sample + 1, p.num_samples, p.stage, p.num_stages, filled,
                 "##############################", kWidth - filled, "", p.step, p.num_steps,
                 p.seconds / p.step, (tty_ && p.step < p.num_steps) ? "" : "\n");
    std::fflush(stderr);
    if (p.step == p.num_steps) last_decile_ = -1;
  }

 private:
  bool enabled_;
  bool tty_;
  int last_decile_ = -1;
};

// --seed as text: CLI11 would read "-1" into an unsigned 64-bit value as 2^64 - 1.
uint64_t parse_seed(const std::string& text) {
  if (text.empty() || text.size() > 20 ||
      text.find_first_not_of("0123456789") != std::string::npos) {
    throw Error(
        ErrorKind::kInvalidArgument, "seed",
        "must be a whole number in 0..18446744073709551615, got '" + quote_for_error(text) + "'");
  }
  errno = 0;
  const unsigned long long value = std::strtoull(text.c_str(), nullptr, 10);
  if (errno == ERANGE) {
    throw Error(ErrorKind::kInvalidArgument, "seed",
                "must be at most 18446744073709551615, got " + text);
  }
  return value;
}

}  // namespace

Runner add_gen_command(CLI::App& app, const GlobalOptions& global) {
  auto request = std::make_shared<GenerateRequest>();
  auto session = std::make_shared<SessionOptions>();
  auto out = std::make_shared<std::string>("out");
  // Text forms of the library's defaults (parsed and checked when the command runs).
  auto seed = std::make_shared<std::string>(std::to_string(request->seed));
  auto from_metadata = std::make_shared<std::string>();
  auto method = std::make_shared<std::string>(method_name(request->method));
  CLI::App* cmd = app.add_subcommand(
      "gen", "Generate visual anagrams: one prompt per view of the same picture");
  cmd->footer(
      "Example:\n  anagram gen --prompt \"an oil painting of a dog\" --prompt \"an oil painting "
      "of a cat\" --view rot180\n  (one --view fewer than --prompt: the first prompt is seen "
      "upright)\n\nOutputs OUT/sample_NNN/ (numbers after those already in OUT; nothing there is "
      "replaced):\n  anagram.png, view_K_<view>_<prompt>.png, sheet.png, metadata.json; with two "
      "stages also\n  anagram_64.png, view_..._64.png, sheet_64.png. Run `anagram views` for the "
      "views.\nReproduce a sample: anagram gen --from-metadata OUT/sample_000/metadata.json "
      "--out again");
  std::vector<CLI::Option*> request_options;
  auto add = [&](CLI::Option* option) {
    request_options.push_back(option);
    return option;
  };
  add(cmd->add_option("-p,--prompt", request->prompts, "Prompt of a view (repeat, in view order)"));
  add(cmd->add_option("-v,--view", request->views,
                      "View of the prompt at the same position (repeat); e.g. rot180, flip, "
                      "patch_permute"));
  add(cmd->add_option("--view-arg", request->view_args,
                      "Parameter of the --view at the same position (repeat; \"\" for none)"));
  add(cmd->add_option("--style", request->style,
                      "Prefix for every prompt, e.g. \"an oil painting of\""));
  cmd->add_option("-b,--bundle", session->bundle,
                  "Model bundle folder (default: $ANAGRAM_BUNDLE or the bundled demo model, "
                  "models/demo-glyphs)")
      ->capture_default_str();
  add(cmd->add_option("-n,--steps", request->steps, "Denoising steps (stage I)")
          ->capture_default_str());
  add(cmd->add_option("-g,--guidance", request->guidance, "Classifier-free guidance scale")
          ->capture_default_str());
  add(cmd->add_option("-s,--seed", *seed, "Random seed (sample i uses seed + i)")
          ->capture_default_str());
  add(cmd->add_option("--num-samples", request->num_samples, "Number of pictures to make")
          ->capture_default_str());
  cmd->add_option("-d,--device", session->device, "cpu, cuda or cuda:N")->capture_default_str();
  cmd->add_option("--dtype", session->dtype,
                  "auto, or the bundle's dtype (float32, float16 or bfloat16) to insist on it")
      ->capture_default_str();
  cmd->add_option("--text-device", session->text_device,
                  "Device of the T5 text encoder (default: --device; cpu keeps T5-XXL off the "
                  "GPU)");
  cmd->add_option("--embeddings-cache", session->embeddings_cache,
                  "Folder for prompt embeddings, so later runs skip the text encoder");
  cmd->add_option("--threads", session->threads,
                  "CPU threads of LibTorch and of its BLAS library (0: their defaults); the same "
                  "seed gives the same bytes for the same thread counts")
      ->capture_default_str();
  cmd->add_option("-o,--out", *out, "Output folder")->capture_default_str();
  cmd->add_option("--from-metadata", *from_metadata,
                  "Rerun the request recorded in a sample's metadata.json (same bundle, device "
                  "and threads give the same bytes)");

  // The cascade.
  add(cmd->add_option("--stages", request->stages,
                      "1: 64x64 only; 2: also 256x256 (default: every stage the bundle has)"));
  add(cmd->add_option("--stage2-steps", request->stage2_steps,
                      "Denoising steps of stage II (default: --steps)"));
  add(cmd->add_option("--stage2-guidance", request->stage2_guidance,
                      "Guidance scale of stage II (default: --guidance)"));
  add(cmd->add_option("--noise-level", request->noise_level,
                      "Stage II noise augmentation of the upscaled picture (default: the "
                      "bundle's, 50 as the published code; IF's own default is 250)"));

  // The method (Xu et al., WACV 2025) and switches for its ablations.
  add(cmd->add_option("--method", *method,
                      "mtl: anti-segregation + noise balancing + variance rectification; "
                      "baseline: the mean of the views' estimates (Geng et al.)")
          ->check(CLI::IsMember({"mtl", "baseline"}))
          ->capture_default_str());
  auto switched_off = std::make_shared<std::array<bool, 3>>();  // antiseg, balance, rectify
  add(cmd->add_flag("--no-antiseg", (*switched_off)[0], "mtl without anti-segregation"));
  add(cmd->add_flag("--no-balance", (*switched_off)[1],
                    "mtl without noise vector balancing (equal weights)"));
  add(cmd->add_flag("--no-rectify", (*switched_off)[2],
                    "mtl without noise variance rectification"));
  add(cmd->add_option("--antiseg-steps", request->antiseg_options.steps,
                      "Anti-segregation after the first K steps (default: 26 of 30, scaled to "
                      "--steps)"));
  add(cmd->add_option("--antiseg-lr", request->antiseg_options.learning_rate,
                      "Anti-segregation learning rate")
          ->capture_default_str());
  add(cmd->add_option(
      "--antiseg-target", request->antiseg_options.target,
      "Target overlap of the concept maps, in [0, 0.5] (default 0.5 - 0.05 (N - 1))"));
  add(cmd->add_option("--concept", request->concepts,
                      "Concept word or phrase of the prompt at the same position (repeat; \"\" "
                      "for the prompt's last word)"));
  add(cmd->add_flag("--exact-steps-exponent", request->mtl.exact_steps_exponent,
                    "Balancing exponent -(1 + i/steps) instead of the published -(1 + i/30)"));
  add(cmd->add_flag("--exact-clip-input", request->mtl.exact_clip_input,
                    "Feed the noise-aware CLIP X instead of the published X/2 + 0.5"));
  add(cmd->add_flag("--exact-concept-tokens", request->exact_concept_tokens,
                    "Find concept tokens in the lower-cased prompt (the published code searches "
                    "the prompt as typed, capitals included)"));
  add(cmd->add_flag("--save-attention", request->save_attention,
                    "Write each task's concept attention map per step (attention_stepNN_*.png)"));
  CLI::Option* from = cmd->get_option("--from-metadata");
  for (CLI::Option* option : request_options) from->excludes(option);

  return [=, &global]() {
    GenerateRequest r = *request;
    SessionOptions so = *session;
    if (!from_metadata->empty()) {
      const RecordedRun recorded = read_recorded_run(*from_metadata);
      r = recorded.request;
      // What the command line names wins; the rest is as recorded.
      if (cmd->count("--bundle") == 0) so.bundle = recorded.session.bundle;
      if (cmd->count("--device") == 0) so.device = recorded.session.device;
      if (cmd->count("--dtype") == 0) so.dtype = recorded.session.dtype;
      if (cmd->count("--text-device") == 0) so.text_device = recorded.session.text_device;
      if (cmd->count("--threads") == 0) {
        so.threads = recorded.session.threads;
        so.blas_threads = recorded.session.blas_threads;
      }
    } else {
      if (r.prompts.empty()) {
        throw Error(ErrorKind::kInvalidArgument, "prompts",
                    "at least one prompt is required (or --from-metadata)");
      }
      r.seed = parse_seed(*seed);
      r.method = parse_method(*method);
      r.antiseg = !(*switched_off)[0];
      r.mtl.balance = !(*switched_off)[1];
      r.mtl.rectify = !(*switched_off)[2];
    }
    // gen encodes every prompt before sampling: T5 need not stay in memory.
    so.release_text_encoder = true;

    // 1. Everything that can be wrong with the input, before any model is loaded and before
    // the output folder exists.
    so.validate();
    so.apply_threads();
    r.validate();
    const Manifest manifest = read_manifest(so.bundle);
    const c10::Device device = parse_device(so.device);
    resolve_dtype(so.dtype, manifest.dtype, device);
    if (!so.text_device.empty()) parse_device(so.text_device, "text_device");
    const GenerationPlan checked = plan_generation(r, manifest, device);
    check_output_dir(*out);

    // 2. Load (every model checked and probed), then create the output folder.
    std::unique_ptr<Session> s = Session::open(so, SessionParts::for_plan(checked));
    if (s->manifest().sha256 != manifest.sha256) {
      throw Error(ErrorKind::kBundle, "bundle", "manifest.json changed while loading");
    }
    const GenerationPlan plan = s->plan(r);
    prepare_output_dir(*out);

    // 3. The samples; each folder is printed as soon as it is complete.
    ProgressDisplay display(!global.quiet);
    RunCallbacks callbacks;
    callbacks.progress = [&](const Progress& p) { display.update(p); };
    callbacks.sample_done = [](const SampleResult& sample) {
      std::printf("%s\n", sample.dir.string().c_str());
      std::fflush(stdout);
    };
    callbacks.interrupted = &g_interrupted;
    callbacks.command_line = global.command_line;
    s->generate(plan, *out, callbacks);
    // A signal during the last sample's write: the sample is complete, but the run was asked to
    // stop, and says so.
    return g_interrupted ? 130 : 0;
  };
}

}  // namespace anagram::cli
