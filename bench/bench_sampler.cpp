// Benchmark of the samplers on a bundle, through the library's own Session: seconds per step of
// each stage with the baseline and with the method (mtl), the share of a step outside the UNet
// calls, the anti-segregation step's cost relative to a plain step's UNet call, and peak memory.
// Prints figures; asserts nothing.
//
// Usage: anagram_bench [--bundle DIR] [--device cpu|cuda] [--steps N] [--views N] [--repeat R]
//                      [--stages 1|2|3] [--threads T]
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>

#include "anagram/core/dtype.h"
#include "anagram/core/error.h"
#include "anagram/core/error_text.h"
#include "anagram/pipeline/session.h"

namespace {

int parse_int(const std::string& key, const std::string& value) {
  char* end = nullptr;
  const long n = std::strtol(value.c_str(), &end, 10);
  if (value.empty() || *end != '\0' || n < 0 || n > 100000) {
    throw anagram::Error(anagram::ErrorKind::kInvalidArgument, key, "needs a number");
  }
  return static_cast<int>(n);
}

struct BenchOptions {
  anagram::SessionOptions session;
  int steps = 10, num_views = 2, repeat = 3, stages = 0;
};

BenchOptions parse_args(int argc, char** argv) {
  BenchOptions o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i], value = argv[i + 1];
    if (key == "--bundle") {
      o.session.bundle = value;
    } else if (key == "--device") {
      o.session.device = value;
    } else if (key == "--steps") {
      o.steps = parse_int(key, value);
    } else if (key == "--views") {
      o.num_views = parse_int(key, value);
    } else if (key == "--repeat") {
      o.repeat = parse_int(key, value);
    } else if (key == "--stages") {
      o.stages = parse_int(key, value);
    } else if (key == "--threads") {
      o.session.threads = parse_int(key, value);
    } else {
      throw anagram::Error(anagram::ErrorKind::kInvalidArgument, key, "unknown option");
    }
  }
  return o;
}

struct StageTotals {
  int stage = 0, steps = 0;
  anagram::StageTiming timing;  // summed over the timed samples
};

// One warm-up sample (the first calls pay for allocations and any graph optimisation), then
// `repeat` timed samples with the UNet calls timed on their own, summed per stage.
std::vector<StageTotals> time_runs(anagram::Session& session, const anagram::GenerateRequest& r,
                                   int repeat) {
  anagram::GenerationPlan plan = session.plan(r);
  plan.request.num_samples = repeat + 1;
  session.generate(plan, 0);
  anagram::RunOptions run;
  run.profile = true;
  std::vector<StageTotals> totals;
  for (int i = 1; i <= repeat; ++i) {
    const anagram::Sample sample = session.generate(plan, i, run);
    totals.resize(sample.stages.size());
    for (size_t s = 0; s < sample.stages.size(); ++s) {
      const anagram::StageResult& stage = sample.stages[s];
      anagram::StageTiming& t = totals[s].timing;
      totals[s].stage = stage.stage;
      totals[s].steps = stage.steps;
      t.seconds += stage.timing.seconds;
      t.unet_seconds += stage.timing.unet_seconds;
      t.unet_calls += stage.timing.unet_calls;
      t.antiseg_seconds += stage.timing.antiseg_seconds;
      t.antiseg_calls += stage.timing.antiseg_calls;
      t.peak_memory_mib = std::max(t.peak_memory_mib, stage.timing.peak_memory_mib);
    }
  }
  return totals;
}

void print_stage(const anagram::Manifest& m, bool cuda, int repeat, const StageTotals& base,
                 const StageTotals& method) {
  const auto& b = base.timing;
  const auto& t = method.timing;
  const double per_step = b.seconds / (repeat * base.steps);
  const double unet = b.unet_seconds / b.unet_calls;
  const double method_step = t.seconds / (repeat * base.steps);
  const auto size = static_cast<long long>(m.stage(base.stage).image_size);
  std::printf("stage %d             %lldx%lld\n", base.stage, size, size);
  std::printf("  baseline          %.4f s per step\n", per_step);
  std::printf("    UNet call       %.4f s per step\n", unet);
  std::printf("    outside UNet    %.1f %% of a step\n", 100.0 * (per_step - unet) / per_step);
  std::printf("  method (mtl)      %.4f s per step (%.2fx baseline)\n", method_step,
              method_step / per_step);
  if (t.antiseg_calls > 0) {
    const double antiseg = t.antiseg_seconds / t.antiseg_calls;
    std::printf("    anti-segregation %.4f s per optimised step = %.2fx a UNet call\n", antiseg,
                antiseg / unet);
  }
  std::printf("  peak memory       %.1f MiB (%s)\n", t.peak_memory_mib,
              cuda ? "CUDA allocated" : "host max RSS");
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const BenchOptions o = parse_args(argc, argv);
    auto session = anagram::Session::open(o.session);
    const char* names[] = {"identity", "rotate_180", "flip", "rotate_cw"};
    anagram::GenerateRequest request;
    for (int k = 0; k < o.num_views; ++k) {
      request.views.push_back(names[k % 4]);
      request.prompts.push_back("a photo of a thing number " + std::to_string(k));
    }
    request.steps = o.steps;
    request.stage3_steps = o.steps;  // stage II already defaults to --steps; III to the bundle's
    request.stages = o.stages;
    anagram::GenerateRequest baseline = request;
    baseline.method = anagram::Method::kBaseline;
    const auto base = time_runs(*session, baseline, o.repeat);
    const auto method = time_runs(*session, request, o.repeat);

    const auto& m = session->manifest();
    std::printf("bundle              %s (%s)\n", m.name.c_str(), o.session.bundle.c_str());
    std::printf("device              %s, %s, %d threads\n", session->device().str().c_str(),
                anagram::dtype_name(session->dtype()).c_str(), session->options().threads);
    std::printf("views               %d (UNet batch %d), %d runs x %d steps per stage\n",
                o.num_views, 2 * o.num_views, o.repeat, o.steps);
    std::printf("load                %.3f s (hashes, every model loaded and probed)\n",
                session->load_seconds());
    for (size_t i = 0; i < base.size(); ++i) {
      print_stage(m, session->device().is_cuda(), o.repeat, base[i], method[i]);
    }
    return 0;
  } catch (const anagram::Error& e) {
    std::fprintf(stderr, "anagram_bench: %s\n", e.what());
    return e.exit_code();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "anagram_bench: %s\n", anagram::describe_exception(e).c_str());
    return 1;
  }
}
