#include "anagram/pipeline/request.h"

#include <cmath>

#include "anagram/core/error_text.h"
#include "anagram/models/vae_decoder.h"
#include "core/json_fields.h"
#include "text/unicode_text.h"

namespace anagram {
namespace {

[[noreturn]] void invalid(const std::string& field, const std::string& detail) {
  throw Error(ErrorKind::kInvalidArgument, field, detail);
}

std::string indexed(const std::string& field, size_t i) {
  return field + "[" + std::to_string(i) + "]";
}

// Text a user typed: valid UTF-8, no control characters (a newline in a prompt would break
// every one-line message and log), bounded.
void check_text(const std::string& field, const std::string& text, size_t max_bytes) {
  if (text.size() > max_bytes) {
    invalid(field, "is " + std::to_string(text.size()) + " bytes long; at most " +
                       std::to_string(max_bytes) + " are accepted");
  }
  std::u32string code_points;
  try {
    code_points = detail::decode_utf8(text);
  } catch (const Error&) {
    invalid(field, "is not valid UTF-8: " + quote_for_error(text));
  }
  for (char32_t c : code_points) {
    if (c < 0x20 || (c >= 0x7f && c < 0xa0) || c == 0x2028 || c == 0x2029) {
      invalid(field, "contains a control character (e.g. a newline): " + quote_for_error(text));
    }
  }
}

void check_range(const std::string& field, double value, double min, double max) {
  if (!std::isfinite(value) || value < min || value > max) {
    char text[128];
    std::snprintf(text, sizeof text, "must be a number in [%g, %g], got %g", min, max, value);
    invalid(field, text);
  }
}

void check_int(const std::string& field, int64_t value, int64_t min, int64_t max) {
  if (value < min || value > max) {
    invalid(field, "must be in " + std::to_string(min) + ".." + std::to_string(max) + ", got " +
                       std::to_string(value));
  }
}

}  // namespace

std::string method_name(Method method) { return method == Method::kMtl ? "mtl" : "baseline"; }

Method parse_method(const std::string& name) {
  if (name == "mtl") return Method::kMtl;
  if (name == "baseline") return Method::kBaseline;
  invalid("method", "unknown method '" + quote_for_error(name) + "' (expected mtl or baseline)");
}

std::string styled_prompt(const std::string& style, const std::string& prompt) {
  // Ref: visual_anagrams generate.py: f'{style} {prompt}'.strip() (Python's Unicode strip).
  const std::string text = style.empty() ? prompt : style + " " + prompt;
  try {
    return detail::encode_utf8(detail::py_strip(detail::decode_utf8(text)));
  } catch (const Error&) {
    return text;  // validate() reports the invalid UTF-8
  }
}

void GenerateRequest::validate() const {
  if (prompts.empty()) invalid("prompts", "at least one prompt is required");
  if (prompts.size() > kMaxTasks) {
    invalid("prompts", std::to_string(prompts.size()) + " prompts; at most " +
                           std::to_string(kMaxTasks) + " views of one picture are supported");
  }
  check_text("style", style, kMaxPromptBytes);
  for (size_t i = 0; i < prompts.size(); ++i) {
    check_text(indexed("prompts", i), prompts[i], kMaxPromptBytes);
    if (styled_prompt(style, prompts[i]).empty()) {
      invalid(indexed("prompts", i), "must not be empty (or only white space)");
    }
  }
  for (size_t i = 0; i < views.size(); ++i) check_text(indexed("views", i), views[i], 64);
  for (size_t i = 0; i < view_args.size(); ++i) {
    check_text(indexed("view_args", i), view_args[i], 256);
  }
  if (!view_args.empty() && view_args.size() != views.size()) {
    invalid("view_args", "was given " + std::to_string(view_args.size()) + " times for " +
                             std::to_string(views.size()) +
                             " views (give one per view, \"\" for none)");
  }
  for (size_t i = 0; i < concepts.size(); ++i) {
    check_text(indexed("concepts", i), concepts[i], 256);
  }
  if (!concepts.empty() && concepts.size() != prompts.size()) {
    invalid("concepts", "was given " + std::to_string(concepts.size()) + " times for " +
                            std::to_string(prompts.size()) +
                            " prompts (give one per prompt, \"\" for the last word)");
  }
  check_int("steps", steps, 1, kMaxSteps);
  check_range("guidance", guidance, 0.0, kMaxGuidance);
  check_int("num_samples", num_samples, 1, kMaxSamples);
  if (seed > UINT64_MAX - static_cast<uint64_t>(num_samples - 1)) {
    invalid("seed", "seed + num_samples - 1 must stay below 2^64");
  }
  // The published learning rate is 5 and the overlap ratio lies in [0, 0.5]: far larger
  // values only blow the picture up to NaN or black.
  check_range("antiseg_lr", antiseg_options.learning_rate, 0.0, 1000.0);
  if (antiseg_options.target) check_range("antiseg_target", *antiseg_options.target, 0.0, 0.5);
  check_int("antiseg_steps", antiseg_options.steps, -1, kMaxSteps);
  check_int("stages", stages, 0, 3);
  if (stage2_steps) check_int("stage2_steps", *stage2_steps, 1, kMaxSteps);
  if (stage2_guidance) check_range("stage2_guidance", *stage2_guidance, 0.0, kMaxGuidance);
  if (noise_level) check_int("noise_level", *noise_level, 0, 999);
  if (stage3_steps) check_int("stage3_steps", *stage3_steps, 1, kMaxSteps);
  if (stage3_guidance) check_range("stage3_guidance", *stage3_guidance, 0.0, kMaxGuidance);
  if (stage3_noise_level) check_int("stage3_noise_level", *stage3_noise_level, 0, 999);
  parse_vae_tiling(vae_tiling);
  resolve_tasks(*this);  // checks the prompt/view counts and every view name and argument
}

nlohmann::json GenerateRequest::to_json() const {
  nlohmann::json j = {
      {"prompts", prompts},
      {"views", views},
      {"view_args", view_args},
      {"style", style},
      {"steps", steps},
      {"guidance", guidance},
      {"seed", seed},
      {"num_samples", num_samples},
      {"method", method_name(method)},
      {"antiseg", antiseg},
      {"antiseg_steps", antiseg_options.steps},
      {"antiseg_lr", antiseg_options.learning_rate},
      {"antiseg_target",
       antiseg_options.target ? nlohmann::json(*antiseg_options.target) : nlohmann::json(nullptr)},
      {"balance", mtl.balance},
      {"rectify", mtl.rectify},
      {"exact_steps_exponent", mtl.exact_steps_exponent},
      {"exact_clip_input", mtl.exact_clip_input},
      {"concepts", concepts},
      {"exact_concept_tokens", exact_concept_tokens},
      {"save_attention", save_attention},
      {"stages", stages},
      {"stage2_steps", stage2_steps ? nlohmann::json(*stage2_steps) : nlohmann::json(nullptr)},
      {"stage2_guidance",
       stage2_guidance ? nlohmann::json(*stage2_guidance) : nlohmann::json(nullptr)},
      {"noise_level", noise_level ? nlohmann::json(*noise_level) : nlohmann::json(nullptr)},
      {"stage3_steps", stage3_steps ? nlohmann::json(*stage3_steps) : nlohmann::json(nullptr)},
      {"stage3_guidance",
       stage3_guidance ? nlohmann::json(*stage3_guidance) : nlohmann::json(nullptr)},
      {"stage3_noise_level",
       stage3_noise_level ? nlohmann::json(*stage3_noise_level) : nlohmann::json(nullptr)},
      {"vae_tiling", vae_tiling},
  };
  return j;
}

GenerateRequest GenerateRequest::from_json(const nlohmann::json& j, ErrorKind kind) {
  const detail::JsonFields f(j, "", kind);
  f.only_keys({"prompts",
               "views",
               "view_args",
               "style",
               "steps",
               "guidance",
               "seed",
               "num_samples",
               "method",
               "antiseg",
               "antiseg_steps",
               "antiseg_lr",
               "antiseg_target",
               "balance",
               "rectify",
               "exact_steps_exponent",
               "exact_clip_input",
               "concepts",
               "exact_concept_tokens",
               "save_attention",
               "stages",
               "stage2_steps",
               "stage2_guidance",
               "noise_level",
               "stage3_steps",
               "stage3_guidance",
               "stage3_noise_level",
               "vae_tiling"});
  GenerateRequest r;
  r.prompts = f.strings("prompts", kMaxTasks, kMaxPromptBytes, /*required=*/true);
  r.views = f.strings("views", kMaxTasks, 64);
  r.view_args = f.strings("view_args", kMaxTasks, 256);
  r.style = f.string("style", kMaxPromptBytes, "");
  r.steps = static_cast<int>(f.integer("steps", 1, kMaxSteps, r.steps));
  r.guidance = f.number("guidance", 0.0, kMaxGuidance, r.guidance);
  if (f.has("seed")) r.seed = f.unsigned_integer("seed");
  r.num_samples = static_cast<int>(f.integer("num_samples", 1, kMaxSamples, r.num_samples));
  if (f.has("method")) {
    const std::string name = f.string("method", 32);
    if (name != "mtl" && name != "baseline") f.fail("method", "must be \"mtl\" or \"baseline\"");
    r.method = parse_method(name);
  }
  r.antiseg = f.boolean("antiseg", r.antiseg);
  r.antiseg_options.steps =
      static_cast<int>(f.integer("antiseg_steps", -1, kMaxSteps, r.antiseg_options.steps));
  r.antiseg_options.learning_rate =
      f.number("antiseg_lr", 0.0, 1000.0, r.antiseg_options.learning_rate);
  r.antiseg_options.target = f.optional_number("antiseg_target", 0.0, 0.5);
  r.mtl.balance = f.boolean("balance", r.mtl.balance);
  r.mtl.rectify = f.boolean("rectify", r.mtl.rectify);
  r.mtl.exact_steps_exponent = f.boolean("exact_steps_exponent", r.mtl.exact_steps_exponent);
  r.mtl.exact_clip_input = f.boolean("exact_clip_input", r.mtl.exact_clip_input);
  r.concepts = f.strings("concepts", kMaxTasks, 256);
  r.exact_concept_tokens = f.boolean("exact_concept_tokens", r.exact_concept_tokens);
  r.save_attention = f.boolean("save_attention", r.save_attention);
  r.stages = static_cast<int>(f.integer("stages", 0, 3, r.stages));
  if (f.has("stage2_steps")) {
    r.stage2_steps = static_cast<int>(f.integer("stage2_steps", 1, kMaxSteps));
  }
  r.stage2_guidance = f.optional_number("stage2_guidance", 0.0, kMaxGuidance);
  if (f.has("noise_level")) r.noise_level = static_cast<int>(f.integer("noise_level", 0, 999));
  if (f.has("stage3_steps")) {
    r.stage3_steps = static_cast<int>(f.integer("stage3_steps", 1, kMaxSteps));
  }
  r.stage3_guidance = f.optional_number("stage3_guidance", 0.0, kMaxGuidance);
  if (f.has("stage3_noise_level")) {
    r.stage3_noise_level = static_cast<int>(f.integer("stage3_noise_level", 0, 999));
  }
  r.vae_tiling = f.string("vae_tiling", 8, r.vae_tiling);
  try {
    parse_vae_tiling(r.vae_tiling);
  } catch (const Error& e) {
    f.fail("vae_tiling", e.detail());
  }
  return r;
}

std::vector<Task> resolve_tasks(const GenerateRequest& request) {
  const size_t n_prompts = request.prompts.size();
  const size_t n_views = request.views.size();
  const bool first_upright = n_views + 1 == n_prompts;
  if (n_views != n_prompts && !first_upright) {
    invalid("views", std::to_string(n_prompts) + " prompts but " + std::to_string(n_views) +
                         " views: give one view per prompt, or one fewer (the first prompt is "
                         "then seen upright)");
  }
  std::vector<Task> tasks;
  for (size_t i = 0; i < n_prompts; ++i) {
    const std::string prompt = styled_prompt(request.style, request.prompts[i]);
    if (first_upright && i == 0) {
      tasks.push_back({make_view("identity"), prompt});
      continue;
    }
    const size_t v = first_upright ? i - 1 : i;
    const std::string arg = request.view_args.empty() ? "" : request.view_args[v];
    try {
      tasks.push_back({make_view(request.views[v], arg), prompt});
    } catch (const Error& e) {
      if (!e.field().empty()) throw;
      throw Error(e.kind(), indexed("views", v), e.detail());
    }
  }
  return tasks;
}

}  // namespace anagram
