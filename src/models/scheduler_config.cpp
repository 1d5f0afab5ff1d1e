#include "anagram/models/scheduler_config.h"

#include <cmath>

#include "anagram/core/error.h"

namespace anagram {
namespace {

using nlohmann::json;

// ---- enum spellings (diffusers' scheduler_config.json values) ----

template <typename Enum>
struct EnumName {
  Enum value;
  const char* name;
};

constexpr EnumName<BetaSchedule> kBetaSchedules[] = {
    {BetaSchedule::kSquaredcosCapV2, "squaredcos_cap_v2"},
    {BetaSchedule::kLinear, "linear"},
    {BetaSchedule::kScaledLinear, "scaled_linear"},
};
constexpr EnumName<VarianceType> kVarianceTypes[] = {
    {VarianceType::kFixedSmall, "fixed_small"}, {VarianceType::kFixedSmallLog, "fixed_small_log"},
    {VarianceType::kFixedLarge, "fixed_large"}, {VarianceType::kFixedLargeLog, "fixed_large_log"},
    {VarianceType::kLearned, "learned"},        {VarianceType::kLearnedRange, "learned_range"},
};
constexpr EnumName<PredictionType> kPredictionTypes[] = {
    {PredictionType::kEpsilon, "epsilon"},
    {PredictionType::kSample, "sample"},
    {PredictionType::kVPrediction, "v_prediction"},
};
constexpr EnumName<TimestepSpacing> kTimestepSpacings[] = {
    {TimestepSpacing::kLeading, "leading"},
    {TimestepSpacing::kTrailing, "trailing"},
    {TimestepSpacing::kLinspace, "linspace"},
};

template <typename Enum, size_t N>
std::string name_of(const EnumName<Enum> (&table)[N], Enum value) {
  for (const auto& entry : table) {
    if (entry.value == value) return entry.name;
  }
  return "?";
}

[[noreturn]] void config_error(const std::string& what) {
  throw Error(ErrorKind::kBundle, "scheduler config: " + what);
}

// A present, non-null key; false when the default should stay.
bool has(const json& j, const char* key) { return j.contains(key) && !j.at(key).is_null(); }

template <typename Enum, size_t N>
void read_enum(const json& j, const char* key, const EnumName<Enum> (&table)[N], Enum& out) {
  if (!has(j, key)) return;
  const json& value = j.at(key);
  if (!value.is_string())
    config_error("key '" + std::string(key) + "' must be a string, got " + value.dump());
  const std::string text = value.get<std::string>();
  std::string expected;
  for (const auto& entry : table) {
    if (text == entry.name) {
      out = entry.value;
      return;
    }
    expected += (expected.empty() ? "" : ", ") + std::string(entry.name);
  }
  config_error("key '" + std::string(key) + "' has unsupported value '" + text +
               "' (expected one of " + expected + ")");
}

void read_int(const json& j, const char* key, int64_t& out) {
  if (!has(j, key)) return;
  const json& value = j.at(key);
  if (!value.is_number_integer()) {
    config_error("key '" + std::string(key) + "' must be an integer, got " + value.dump());
  }
  out = value.get<int64_t>();
}

void read_double(const json& j, const char* key, double& out) {
  if (!has(j, key)) return;
  const json& value = j.at(key);
  if (!value.is_number())
    config_error("key '" + std::string(key) + "' must be a number, got " + value.dump());
  out = value.get<double>();
}

void read_bool(const json& j, const char* key, bool& out) {
  if (!has(j, key)) return;
  const json& value = j.at(key);
  if (!value.is_boolean())
    config_error("key '" + std::string(key) + "' must be true or false, got " + value.dump());
  out = value.get<bool>();
}

[[noreturn]] void invalid(const std::string& what) {
  throw Error(ErrorKind::kInvalidArgument, "DDPM scheduler: " + what);
}

}  // namespace

std::string to_string(BetaSchedule value) { return name_of(kBetaSchedules, value); }
std::string to_string(VarianceType value) { return name_of(kVarianceTypes, value); }
std::string to_string(PredictionType value) { return name_of(kPredictionTypes, value); }
std::string to_string(TimestepSpacing value) { return name_of(kTimestepSpacings, value); }

// ---- config ----

DDPMSchedulerConfig DDPMSchedulerConfig::from_json(const json& j) {
  if (!j.is_object()) config_error("expected a JSON object, got " + j.dump());
  DDPMSchedulerConfig c;
  read_int(j, "num_train_timesteps", c.num_train_timesteps);
  read_enum(j, "beta_schedule", kBetaSchedules, c.beta_schedule);
  read_double(j, "beta_start", c.beta_start);
  read_double(j, "beta_end", c.beta_end);
  if (has(j, "trained_betas")) config_error("key 'trained_betas' is not supported (must be null)");
  read_enum(j, "variance_type", kVarianceTypes, c.variance_type);
  read_enum(j, "prediction_type", kPredictionTypes, c.prediction_type);
  read_bool(j, "clip_sample", c.clip_sample);
  read_double(j, "clip_sample_range", c.clip_sample_range);
  read_bool(j, "thresholding", c.thresholding);
  read_double(j, "dynamic_thresholding_ratio", c.dynamic_thresholding_ratio);
  read_double(j, "sample_max_value", c.sample_max_value);
  read_enum(j, "timestep_spacing", kTimestepSpacings, c.timestep_spacing);
  read_int(j, "steps_offset", c.steps_offset);
  try {
    c.validate();
  } catch (const Error& e) {
    config_error(e.what());
  }
  return c;
}

json DDPMSchedulerConfig::to_json() const {
  return json{
      {"_class_name", "DDPMScheduler"},
      {"num_train_timesteps", num_train_timesteps},
      {"beta_schedule", to_string(beta_schedule)},
      {"beta_start", beta_start},
      {"beta_end", beta_end},
      {"trained_betas", nullptr},
      {"variance_type", to_string(variance_type)},
      {"prediction_type", to_string(prediction_type)},
      {"clip_sample", clip_sample},
      {"clip_sample_range", clip_sample_range},
      {"thresholding", thresholding},
      {"dynamic_thresholding_ratio", dynamic_thresholding_ratio},
      {"sample_max_value", sample_max_value},
      {"timestep_spacing", to_string(timestep_spacing)},
      {"steps_offset", steps_offset},
  };
}

void DDPMSchedulerConfig::validate() const {
  const auto finite_positive = [](double v) { return std::isfinite(v) && v > 0; };
  // The schedule is a table of num_train_timesteps floats: bound it (IF uses 1000).
  if (num_train_timesteps < 2 || num_train_timesteps > 100000) {
    invalid("num_train_timesteps must lie in [2, 100000], got " +
            std::to_string(num_train_timesteps));
  }
  if (beta_schedule != BetaSchedule::kSquaredcosCapV2) {
    if (!(beta_start > 0 && beta_start < 1) || !(beta_end > 0 && beta_end < 1)) {
      invalid("beta_start and beta_end must lie in (0, 1), got " + std::to_string(beta_start) +
              " and " + std::to_string(beta_end));
    }
  }
  if (variance_type == VarianceType::kFixedLargeLog) {
    // diffusers 0.24 returns log(beta_t) from _get_variance and then takes its square root in
    // step(): every noisy step becomes NaN. Rather than guess the intent, refuse it.
    invalid(
        "variance_type 'fixed_large_log' is not supported (diffusers' DDPMScheduler yields "
        "NaN with it)");
  }
  if (!finite_positive(clip_sample_range)) {
    invalid("clip_sample_range must be positive, got " + std::to_string(clip_sample_range));
  }
  if (!(dynamic_thresholding_ratio > 0 && dynamic_thresholding_ratio <= 1)) {
    invalid("dynamic_thresholding_ratio must lie in (0, 1], got " +
            std::to_string(dynamic_thresholding_ratio));
  }
  if (!finite_positive(sample_max_value)) {
    invalid("sample_max_value must be positive, got " + std::to_string(sample_max_value));
  }
  if (steps_offset < 0 || steps_offset >= num_train_timesteps) {
    invalid("steps_offset must lie in [0, num_train_timesteps), got " +
            std::to_string(steps_offset));
  }
}

void DDIMSchedulerConfig::validate() const {
  if (num_train_timesteps < 1 || num_train_timesteps > 100000) {
    throw Error(ErrorKind::kInvalidArgument, "num_train_timesteps", "must be in 1..100000");
  }
  if (beta_schedule == BetaSchedule::kSquaredcosCapV2) {
    throw Error(ErrorKind::kInvalidArgument, "beta_schedule",
                "the DDIM scheduler takes linear or scaled_linear betas");
  }
  if (!(beta_start > 0 && beta_start <= beta_end && beta_end < 1)) {
    throw Error(ErrorKind::kInvalidArgument, "beta_start",
                "betas must satisfy 0 < beta_start <= beta_end < 1");
  }
  if (steps_offset < 0 || steps_offset >= num_train_timesteps) {
    throw Error(ErrorKind::kInvalidArgument, "steps_offset", "must be in 0..T-1");
  }
}

DDIMSchedulerConfig DDIMSchedulerConfig::from_json(const json& j) {
  if (!j.is_object()) config_error("expected a JSON object, got " + j.dump());
  DDIMSchedulerConfig c;
  read_int(j, "num_train_timesteps", c.num_train_timesteps);
  read_enum(j, "beta_schedule", kBetaSchedules, c.beta_schedule);
  read_double(j, "beta_start", c.beta_start);
  read_double(j, "beta_end", c.beta_end);
  read_enum(j, "prediction_type", kPredictionTypes, c.prediction_type);
  read_bool(j, "set_alpha_to_one", c.set_alpha_to_one);
  read_int(j, "steps_offset", c.steps_offset);
  // What the upscaler's config leaves off and this scheduler does not implement.
  if (has(j, "trained_betas")) config_error("key 'trained_betas' is not supported (must be null)");
  for (const char* key : {"clip_sample", "thresholding", "rescale_betas_zero_snr"}) {
    bool on = false;
    read_bool(j, key, on);
    if (on) config_error(std::string("key '") + key + "' must be false for the DDIM scheduler");
  }
  TimestepSpacing spacing = TimestepSpacing::kLeading;
  read_enum(j, "timestep_spacing", kTimestepSpacings, spacing);
  if (spacing != TimestepSpacing::kLeading) {
    config_error("the DDIM scheduler implements timestep_spacing 'leading' only");
  }
  try {
    c.validate();
  } catch (const Error& e) {
    config_error(e.what());
  }
  return c;
}

json DDIMSchedulerConfig::to_json() const {
  return json{
      {"_class_name", "DDIMScheduler"},
      {"num_train_timesteps", num_train_timesteps},
      {"beta_schedule", to_string(beta_schedule)},
      {"beta_start", beta_start},
      {"beta_end", beta_end},
      {"prediction_type", to_string(prediction_type)},
      {"set_alpha_to_one", set_alpha_to_one},
      {"steps_offset", steps_offset},
      {"clip_sample", false},
      {"thresholding", false},
      {"timestep_spacing", "leading"},
  };
}

json to_json(const SchedulerConfig& config) {
  return std::visit([](const auto& c) { return c.to_json(); }, config);
}

int64_t num_train_timesteps(const SchedulerConfig& config) {
  return std::visit([](const auto& c) { return c.num_train_timesteps; }, config);
}

}  // namespace anagram
