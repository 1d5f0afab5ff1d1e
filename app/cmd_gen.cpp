// anagram gen: make visual anagrams.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <map>
#include <memory>

#include "anagram/generate.h"
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
    std::fprintf(stderr, "%ssample %d/%d [%.*s%*s] step %d/%d  %.2f s/step%s", tty_ ? "\r" : "",
                 p.sample + 1, p.num_samples, filled, "##############################",
                 kWidth - filled, "", p.step, p.num_steps, p.seconds / p.step,
                 (tty_ && p.step < p.num_steps) ? "" : "\n");
    std::fflush(stderr);
    if (p.step == p.num_steps) last_decile_ = -1;
  }

 private:
  bool enabled_;
  bool tty_;
  int last_decile_ = -1;
};

}  // namespace

Runner add_gen_command(CLI::App& app, const GlobalOptions& global) {
  auto options = std::make_shared<GenerateOptions>();
  CLI::App* cmd = app.add_subcommand(
      "gen", "Generate visual anagrams: one prompt per view of the same picture");
  cmd->footer(
      "Example:\n  anagram gen --prompt \"an oil painting of a dog\" --prompt \"an oil painting "
      "of a cat\" --view rot180\n  (one --view fewer than --prompt: the first prompt is seen "
      "upright)\n\nOutputs OUT/sample_NNN/: anagram.png, view_K_<view>_<prompt>.png, sheet.png, "
      "metadata.json.\nRun `anagram views` for the list of views.");
  cmd->add_option("-p,--prompt", options->prompts, "Prompt of a view (repeat, in view order)")
      ->required();
  cmd->add_option("-v,--view", options->views,
                  "View of the prompt at the same position (repeat); e.g. rot180, flip, "
                  "patch_permute");
  cmd->add_option("--view-arg", options->view_args,
                  "Parameter of the --view at the same position (repeat; \"\" for none)");
  cmd->add_option("--style", options->style,
                  "Prefix for every prompt, e.g. \"an oil painting of\"");
  cmd->add_option("-b,--bundle", options->bundle,
                  "Model bundle folder (default: $ANAGRAM_BUNDLE "
                  "or the bundled tiny model)")
      ->capture_default_str();
  cmd->add_option("-n,--steps", options->steps, "Denoising steps")->capture_default_str();
  cmd->add_option("-g,--guidance", options->guidance, "Classifier-free guidance scale")
      ->capture_default_str();
  cmd->add_option("-s,--seed", options->seed, "Random seed (sample i uses seed + i)")
      ->capture_default_str();
  cmd->add_option("--num-samples", options->num_samples, "Number of pictures to make")
      ->capture_default_str();
  cmd->add_option("-d,--device", options->device, "cpu, cuda or cuda:N")->capture_default_str();
  cmd->add_option("--dtype", options->dtype,
                  "auto, or the bundle's dtype (float32, float16 or bfloat16) to insist on it")
      ->capture_default_str();
  cmd->add_option("-o,--out", options->out, "Output folder")->capture_default_str();

  // The method (Xu et al., WACV 2025) and switches for its ablations.
  const std::map<std::string, Method> methods = {{"mtl", Method::kMtl},
                                                 {"baseline", Method::kBaseline}};
  cmd->add_option("--method", options->method,
                  "mtl: anti-segregation + noise balancing + variance rectification; baseline: "
                  "the mean of the views' estimates (Geng et al.)")
      ->transform(CLI::CheckedTransformer(methods, CLI::ignore_case))
      ->option_text("mtl|baseline (default mtl)");
  auto switched_off = std::make_shared<std::array<bool, 3>>();  // antiseg, balance, rectify
  cmd->add_flag("--no-antiseg", (*switched_off)[0], "mtl without anti-segregation");
  cmd->add_flag("--no-balance", (*switched_off)[1],
                "mtl without noise vector balancing (equal weights)");
  cmd->add_flag("--no-rectify", (*switched_off)[2], "mtl without noise variance rectification");
  cmd->add_option("--antiseg-steps", options->antiseg_options.steps,
                  "Anti-segregation after the first K steps (default: 26 of 30, scaled to "
                  "--steps)");
  cmd->add_option("--antiseg-lr", options->antiseg_options.learning_rate,
                  "Anti-segregation learning rate")
      ->capture_default_str();
  cmd->add_option("--antiseg-target", options->antiseg_options.target,
                  "Target overlap of the concept maps (default 0.5 - 0.05 (N - 1))");
  cmd->add_option("--concept", options->concepts,
                  "Concept word or phrase of the prompt at the same position (repeat; \"\" for "
                  "the prompt's last word)");
  cmd->add_flag("--exact-steps-exponent", options->mtl.exact_steps_exponent,
                "Balancing exponent -(1 + i/steps) instead of the published -(1 + i/30)");
  cmd->add_flag("--exact-clip-input", options->mtl.exact_clip_input,
                "Feed the noise-aware CLIP X instead of the published X/2 + 0.5");
  cmd->add_flag("--save-attention", options->save_attention,
                "Write each task's concept attention map per step (attention_stepNN_*.png)");

  return [options, switched_off, &global]() {
    options->command_line = global.command_line;
    options->antiseg = !(*switched_off)[0];
    options->mtl.balance = !(*switched_off)[1];
    options->mtl.rectify = !(*switched_off)[2];
    ProgressDisplay display(!global.quiet);
    const GenerateResult result = generate(
        *options, [&](const Progress& p) { display.update(p); }, &g_interrupted);
    for (const auto& dir : result.sample_dirs) std::printf("%s\n", dir.string().c_str());
    return 0;
  };
}

}  // namespace anagram::cli
