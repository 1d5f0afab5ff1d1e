#include "anagram/io/sample_writer.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <fstream>

#include "anagram/core/error.h"
#include "anagram/io/image_io.h"
#include "anagram/io/output.h"
#include "core/json_fields.h"

namespace anagram {
namespace {

using nlohmann::json;

// Pictures of 64x64 are small to look at: sheets show them at 256 pixels.
int display_factor(int64_t size) { return size >= 256 ? 1 : static_cast<int>(256 / size); }

// (R, R) non-negative map -> a heat map in [-1, 1] (black-red-yellow-white), (3, R, R).
torch::Tensor heat_map(const torch::Tensor& map) {
  const torch::Tensor v = map / map.max().clamp_min(1e-12);
  const torch::Tensor rgb =
      torch::stack({(3 * v).clamp(0, 1), (3 * v - 1).clamp(0, 1), (3 * v - 2).clamp(0, 1)});
  return rgb * 2 - 1;
}

std::string stem_of(const std::vector<Task>& tasks, size_t k) {
  return std::to_string(k) + "_" + tasks[k].view->name() + "_" + slugify(tasks[k].prompt);
}

// The one place a sample's pictures cross to the host, whatever device made them.
torch::Tensor host(const torch::Tensor& t) { return t.to(torch::kCPU, torch::kFloat); }

void check_stage(const StageResult& stage, size_t num_tasks) {
  const auto n = static_cast<int64_t>(num_tasks);
  const bool ok = stage.image.defined() && stage.image.dim() == 3 && stage.seen.defined() &&
                  stage.seen.dim() == 4 && stage.seen.size(0) == n &&
                  stage.seen.sizes().slice(1) == stage.image.sizes();
  if (!ok) {
    throw Error(ErrorKind::kInvalidArgument, "sample",
                "stage " + std::to_string(stage.stage) +
                    " needs a (C,S,S) picture and its (N,C,S,S) views, one per task");
  }
}

// Every picture carries what made it (no timestamps: the same request gives the same bytes).
std::vector<std::pair<std::string, std::string>> png_parameters(const json& metadata) {
  const json parameters = {{"request", metadata.value("request", json())},
                           {"bundle", metadata.value("bundle", json())},
                           {"program", metadata.value("program", json())}};
  return {{"parameters", parameters.dump(-1, ' ', false, json::error_handler_t::replace)}};
}

// The stage's anagram, its views and its sheet; returns the stage's entry of metadata "files".
json write_stage(SampleFolder& folder, const Sample& sample, const StageResult& stage,
                 const std::string& suffix,
                 const std::vector<std::pair<std::string, std::string>>& parameters) {
  const torch::Tensor seen = host(stage.seen);
  json files = {{"size", stage.size},
                {"anagram", "anagram" + suffix + ".png"},
                {"sheet", "sheet" + suffix + ".png"},
                {"views", json::array()}};
  folder.add_file("anagram" + suffix + ".png", encode_png(to_rgb8(host(stage.image)), parameters));
  std::vector<RgbImage> tiles;
  std::vector<std::string> captions;
  for (size_t k = 0; k < sample.tasks.size(); ++k) {
    const RgbImage picture = to_rgb8(seen[static_cast<int64_t>(k)]);
    const std::string file = "view_" + stem_of(sample.tasks, k) + suffix + ".png";
    folder.add_file(file, encode_png(picture, parameters));
    files["views"].push_back(file);
    tiles.push_back(upscale_nearest(picture, display_factor(stage.size)));
    captions.push_back(sample.tasks[k].view->name() + ": " + sample.tasks[k].prompt);
  }
  folder.add_file("sheet" + suffix + ".png", encode_png(make_sheet(tiles, captions), parameters));
  return files;
}

// One heat map per step and task: attention_stepNN_<stem><suffix>.png.
void write_attention(SampleFolder& folder, const Sample& sample, const torch::Tensor& maps,
                     const std::string& suffix, json& task_files) {
  const torch::Tensor all = host(maps);  // (steps, N, R, R)
  for (size_t k = 0; k < sample.tasks.size(); ++k) {
    const std::string stem = stem_of(sample.tasks, k) + suffix;
    task_files[k]["attention_files"] = "attention_step<NN>_" + stem + ".png";
    for (int64_t i = 0; i < all.size(0); ++i) {
      char step[48];
      std::snprintf(step, sizeof step, "attention_step%02lld_", static_cast<long long>(i));
      const RgbImage heat = to_rgb8(heat_map(all[i][static_cast<int64_t>(k)]));
      folder.add_file(step + stem + ".png", encode_png(upscale_nearest(heat, 4)));
    }
  }
}

}  // namespace

std::filesystem::path write_sample(const std::filesystem::path& out, const Sample& sample,
                                   const std::string& folder_name) {
  if (sample.stages.empty()) {
    throw Error(ErrorKind::kInvalidArgument, "sample", "has no stages to write");
  }
  for (const auto& stage : sample.stages) check_stage(stage, sample.tasks.size());
  SampleFolder folder(out, folder_name);
  const auto parameters = png_parameters(sample.metadata);
  json task_files = json::array();
  for (const auto& task : sample.tasks) {
    task_files.push_back(
        {{"view", task.view->name()}, {"view_arg", task.view->arg()}, {"prompt", task.prompt}});
  }
  json stage_files = json::array();
  for (size_t s = 0; s < sample.stages.size(); ++s) {
    const StageResult& stage = sample.stages[s];
    const bool last = s + 1 == sample.stages.size();
    const std::string suffix = last ? "" : "_" + std::to_string(stage.size);
    json files = write_stage(folder, sample, stage, suffix, parameters);
    if (last) {
      for (size_t k = 0; k < sample.tasks.size(); ++k) task_files[k]["file"] = files["views"][k];
    }
    stage_files.push_back(std::move(files));
    // Attention maps keep their names of the first stage (no size suffix), as before.
    if (stage.records.attention_maps.defined()) {
      write_attention(folder, sample, stage.records.attention_maps, s == 0 ? "" : suffix,
                      task_files);
    }
  }
  json metadata = sample.metadata;
  metadata["tasks"] = task_files;
  metadata["files"] = stage_files;
  // error_handler replace: a path or text that is not UTF-8 must not lose the finished sample.
  folder.add_file("metadata.json",
                  metadata.dump(2, ' ', false, json::error_handler_t::replace) + "\n");
  return folder.commit();
}

namespace {

bool regular_file(const std::filesystem::path& path, off_t max_bytes = 0) {
  struct stat st {};
  return lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
         (max_bytes == 0 || st.st_size <= max_bytes);
}

}  // namespace

bool sample_folder_complete(const std::filesystem::path& dir) {
  struct stat st {};
  if (lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return false;
  const auto metadata_file = dir / "metadata.json";
  if (!regular_file(metadata_file, 64 << 20)) return false;
  std::ifstream in(metadata_file, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  try {
    const json metadata =
        detail::parse_json_bounded(bytes, ErrorKind::kInvalidArgument, "metadata.json");
    const json& files = metadata.at("files");
    if (!files.is_array() || files.empty()) return false;
    std::vector<std::string> names;
    for (const json& stage : files) {
      names.push_back(stage.at("anagram").get<std::string>());
      names.push_back(stage.at("sheet").get<std::string>());
      for (const json& view : stage.at("views")) names.push_back(view.get<std::string>());
    }
    return std::all_of(names.begin(), names.end(), [&](const std::string& name) {
      return name.find('/') == std::string::npos && regular_file(dir / name);
    });
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace anagram
