// anagram gen: make visual anagrams.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "anagram/core/device.h"
#include "anagram/core/error_text.h"
#include "anagram/io/output.h"
#include "anagram/io/sample_writer.h"
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

// What the command line gives beyond the request's own fields (text forms are parsed when the
// command runs, so that errors come out as one line).
struct GenOptions {
  GenerateRequest request;
  SessionOptions session;
  std::string out = "out";
  std::string seed = "0";
  std::string from_metadata;
  bool allow_other_bundle = false;
  std::string method = method_name(Method::kMtl);
  std::array<bool, 3> switched_off{};  // --no-antiseg, --no-balance, --no-rectify
};

// The options that make up a request; they exclude --from-metadata.
std::vector<CLI::Option*> add_request_options(CLI::App* cmd, GenOptions& o) {
  GenerateRequest& r = o.request;
  std::vector<CLI::Option*> added = {
      cmd->add_option("-p,--prompt", r.prompts, "Prompt of a view (repeat, in view order)"),
      cmd->add_option("-v,--view", r.views,
                      "View of the prompt at the same position (repeat); e.g. rot180, flip, "
                      "patch_permute"),
      cmd->add_option("--view-arg", r.view_args,
                      "Parameter of the --view at the same position (repeat; \"\" for none)"),
      cmd->add_option("--style", r.style, "Prefix for every prompt, e.g. \"an oil painting of\""),
      cmd->add_option("-n,--steps", r.steps, "Denoising steps (stage I)")->capture_default_str(),
      cmd->add_option("-g,--guidance", r.guidance, "Classifier-free guidance scale")
          ->capture_default_str(),
      cmd->add_option("-s,--seed", o.seed, "Random seed (sample i uses seed + i)")
          ->capture_default_str(),
      cmd->add_option("--num-samples", r.num_samples, "Number of pictures to make")
          ->capture_default_str(),
      // The cascade.
      cmd->add_option("--stages", r.stages,
                      "1: 64x64 only; 2: also 256x256; 3: also 1024x1024 (default: every stage "
                      "the bundle has whose views work there)"),
      cmd->add_option("--stage2-steps", r.stage2_steps,
                      "Denoising steps of stage II (default: --steps)"),
      cmd->add_option("--stage2-guidance", r.stage2_guidance,
                      "Guidance scale of stage II (default: --guidance)"),
      cmd->add_option("--noise-level", r.noise_level,
                      "Stage II noise augmentation of the upscaled picture (default: the "
                      "bundle's, 50 as the published code; IF's own default is 250)"),
      cmd->add_option("--stage3-steps", r.stage3_steps,
                      "Denoising steps of stage III, the x4 upscaler (default: the bundle's, 75)"),
      cmd->add_option("--stage3-guidance", r.stage3_guidance,
                      "Guidance scale of stage III (default: the bundle's, 9)"),
      cmd->add_option("--stage3-noise-level", r.stage3_noise_level,
                      "Stage III noise augmentation of the 256x256 picture (default: the "
                      "bundle's, 20; at most 350)"),
      cmd->add_option("--vae-tiling", r.vae_tiling,
                      "Stage III's decoder: auto (in tiles above 512x512 pictures), on (in tiles "
                      "whenever larger than one), off (whole, as the published pipeline)")
          ->capture_default_str(),
  };
  return added;
}

// The method (Xu et al., WACV 2025) and the switches of its ablations.
std::vector<CLI::Option*> add_method_options(CLI::App* cmd, GenOptions& o) {
  GenerateRequest& r = o.request;
  return {
      cmd->add_option("--method", o.method,
                      "mtl: anti-segregation + noise balancing + variance rectification; "
                      "baseline: the mean of the views' estimates (Geng et al.)")
          ->check(CLI::IsMember({"mtl", "baseline"}))
          ->capture_default_str(),
      cmd->add_flag("--no-antiseg", o.switched_off[0], "mtl without anti-segregation"),
      cmd->add_flag("--no-balance", o.switched_off[1],
                    "mtl without noise vector balancing (equal weights)"),
      cmd->add_flag("--no-rectify", o.switched_off[2], "mtl without noise variance rectification"),
      cmd->add_option("--antiseg-steps", r.antiseg_options.steps,
                      "Anti-segregation after the first K steps (default: 26 of 30, scaled to "
                      "--steps)"),
      cmd->add_option("--antiseg-lr", r.antiseg_options.learning_rate,
                      "Anti-segregation learning rate")
          ->capture_default_str(),
      cmd->add_option(
          "--antiseg-target", r.antiseg_options.target,
          "Target overlap of the concept maps, in [0, 0.5] (default 0.5 - 0.05 (N - 1))"),
      cmd->add_option("--concept", r.concepts,
                      "Concept word or phrase of the prompt at the same position (repeat; \"\" "
                      "for the prompt's last word)"),
      cmd->add_flag("--exact-steps-exponent", r.mtl.exact_steps_exponent,
                    "Balancing exponent -(1 + i/steps) instead of the published -(1 + i/30)"),
      cmd->add_flag("--exact-clip-input", r.mtl.exact_clip_input,
                    "Feed the noise-aware CLIP X instead of the published X/2 + 0.5"),
      cmd->add_flag("--exact-concept-tokens", r.exact_concept_tokens,
                    "Find concept tokens in the lower-cased prompt (the published code searches "
                    "the prompt as typed, capitals included)"),
      cmd->add_flag("--save-attention", r.save_attention,
                    "Write each task's concept attention map per step (attention_stepNN_*.png)"),
  };
}

// --from-metadata: the recorded request and session; what the command line names wins. The
// recorded bundle must be the one loaded now, or the rerun would silently differ.
void use_recorded_run(const CLI::App& cmd, const GenOptions& o, GenerateRequest& r,
                      SessionOptions& so, std::string& expected_manifest, nlohmann::json& rerun) {
  const RecordedRun recorded = read_recorded_run(o.from_metadata);
  r = recorded.request;
  if (cmd.count("--bundle") == 0) so.bundle = recorded.session.bundle;
  if (cmd.count("--device") == 0) so.device = recorded.session.device;
  if (cmd.count("--dtype") == 0) so.dtype = recorded.session.dtype;
  if (cmd.count("--text-device") == 0) so.text_device = recorded.session.text_device;
  if (cmd.count("--threads") == 0) {
    so.threads = recorded.session.threads;
    so.blas_threads = recorded.session.blas_threads;
  }
  if (!o.allow_other_bundle) expected_manifest = recorded.manifest_sha256;
  rerun = {{"metadata", o.from_metadata},
           {"recorded_manifest_sha256", recorded.manifest_sha256},
           {"allow_other_bundle", o.allow_other_bundle}};
}

int run_gen(const CLI::App& cmd, const GenOptions& o, const GlobalOptions& global) {
  GenerateRequest r = o.request;
  SessionOptions so = o.session;
  std::string expected_manifest;
  nlohmann::json rerun;
  if (!o.from_metadata.empty()) {
    use_recorded_run(cmd, o, r, so, expected_manifest, rerun);
  } else {
    if (r.prompts.empty()) {
      throw Error(ErrorKind::kInvalidArgument, "prompts",
                  "at least one prompt is required (or --from-metadata)");
    }
    r.seed = parse_seed(o.seed);
    r.method = parse_method(o.method);
    r.antiseg = !o.switched_off[0];
    r.mtl.balance = !o.switched_off[1];
    r.mtl.rectify = !o.switched_off[2];
  }
  // gen encodes every prompt before sampling: T5 need not stay in memory.
  so.release_text_encoder = true;

  // 1. Everything that can be wrong with the input, before any model is loaded and before
  // the output folder exists; the plan made here is the one that runs.
  so.validate();
  Manifest manifest = read_manifest(so.bundle);
  if (!expected_manifest.empty() && expected_manifest != manifest.sha256) {
    throw Error(ErrorKind::kInvalidArgument, "from_metadata",
                "the sample was made by bundle manifest " + expected_manifest + ", but '" +
                    printable(so.bundle) + "' now has manifest " + manifest.sha256 +
                    " (the rerun would differ; --allow-other-bundle runs it anyway)");
  }
  const c10::Device device = parse_device(so.device);
  resolve_dtype(so.dtype, manifest.dtype, device);
  if (!so.text_device.empty()) parse_device(so.text_device, "text_device");
  const GenerationPlan plan = plan_generation(r, manifest);
  check_output_dir(o.out);
  for (const auto& note : plan.notes) spdlog::info("{}", note);

  // 2. Load (every model checked and probed), then create the output folder.
  const std::unique_ptr<Session> session =
      Session::open(so, std::move(manifest), SessionParts::for_plan(plan));
  prepare_output_dir(o.out);

  // 3. The samples; each folder is printed as soon as it is complete.
  ProgressDisplay display(!global.quiet);
  RunOptions run;
  run.progress = [&](const Progress& p) { display.update(p); };
  run.interrupted = &g_interrupted;
  run.command_line = global.command_line;
  run.rerun = rerun;
  for (int i = 0; i < plan.request.num_samples; ++i) {
    const Sample sample = session->generate(plan, i, run);
    const std::filesystem::path dir = write_sample(o.out, sample);
    spdlog::info("wrote {} ({:.2f} s)", dir.string(), sample.seconds);
    std::printf("%s\n", dir.string().c_str());
    std::fflush(stdout);
  }
  // A signal during the last sample's write: the sample is complete, but the run was asked to
  // stop, and says so.
  return g_interrupted ? 130 : 0;
}

}  // namespace

Runner add_gen_command(CLI::App& app, const GlobalOptions& global) {
  auto o = std::make_shared<GenOptions>();
  o->seed = std::to_string(o->request.seed);
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
  std::vector<CLI::Option*> request_options = add_request_options(cmd, *o);
  add_session_options(cmd, o->session, SessionOptionsFor::kGen);
  cmd->add_option("-o,--out", o->out, "Output folder")->capture_default_str();
  CLI::Option* from = cmd->add_option(
      "--from-metadata", o->from_metadata,
      "Rerun the request recorded in a sample's metadata.json (same bundle, device and threads "
      "give the same bytes)");
  cmd->add_flag("--allow-other-bundle", o->allow_other_bundle,
                "With --from-metadata: run even if the bundle's manifest differs from the "
                "recorded one (the pictures will differ)");
  for (CLI::Option* option : add_method_options(cmd, *o)) request_options.push_back(option);
  for (CLI::Option* option : request_options) from->excludes(option);
  return [cmd, o, &global]() { return run_gen(*cmd, *o, global); };
}

}  // namespace anagram::cli
