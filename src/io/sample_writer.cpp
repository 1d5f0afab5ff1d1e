#include "io/sample_writer.h"

#include "anagram/io/image_io.h"
#include "anagram/io/output.h"

namespace anagram::detail {
namespace {

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

}  // namespace

std::filesystem::path write_sample(const std::filesystem::path& out, const std::vector<Task>& tasks,
                                   const std::vector<StageImages>& stages,
                                   const std::vector<torch::Tensor>& attention_maps,
                                   nlohmann::json metadata, const std::string& folder_name) {
  SampleFolder folder(out, folder_name);
  // Every picture carries what made it (no timestamps: the same request gives the same bytes).
  const nlohmann::json parameters_json = {{"request", metadata.value("request", nlohmann::json())},
                                          {"bundle", metadata.value("bundle", nlohmann::json())},
                                          {"program", metadata.value("program", nlohmann::json())}};
  const std::vector<std::pair<std::string, std::string>> parameters = {
      {"parameters",
       parameters_json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)}};
  nlohmann::json task_files = nlohmann::json::array();
  for (size_t k = 0; k < tasks.size(); ++k) {
    task_files.push_back({{"view", tasks[k].view->name()},
                          {"view_arg", tasks[k].view->arg()},
                          {"prompt", tasks[k].prompt}});
  }
  nlohmann::json stage_files = nlohmann::json::array();
  for (size_t s = 0; s < stages.size(); ++s) {
    const StageImages& stage = stages[s];
    const bool last = s + 1 == stages.size();
    const std::string suffix = last ? "" : "_" + std::to_string(stage.views->height());
    const torch::Tensor seen = stage.views->apply_each(stage.image).to(torch::kCPU);
    nlohmann::json files = {{"size", stage.views->height()},
                            {"anagram", "anagram" + suffix + ".png"},
                            {"sheet", "sheet" + suffix + ".png"}};
    folder.add_file("anagram" + suffix + ".png", encode_png(to_rgb8(stage.image), parameters));
    std::vector<RgbImage> tiles;
    std::vector<std::string> captions;
    for (size_t k = 0; k < tasks.size(); ++k) {
      const RgbImage picture = to_rgb8(seen[static_cast<int64_t>(k)]);
      const std::string file = "view_" + stem_of(tasks, k) + suffix + ".png";
      folder.add_file(file, encode_png(picture, parameters));
      files["views"].push_back(file);
      if (last) task_files[k]["file"] = file;
      tiles.push_back(upscale_nearest(picture, display_factor(stage.views->height())));
      captions.push_back(tasks[k].view->name() + ": " + tasks[k].prompt);
    }
    folder.add_file("sheet" + suffix + ".png", encode_png(make_sheet(tiles, captions), parameters));
    stage_files.push_back(files);
  }
  if (!attention_maps.empty()) {
    const auto maps = torch::stack(attention_maps).to(torch::kCPU);  // (steps, N, R, R)
    for (size_t k = 0; k < tasks.size(); ++k) {
      task_files[k]["attention_files"] = "attention_step<NN>_" + stem_of(tasks, k) + ".png";
      for (int64_t i = 0; i < maps.size(0); ++i) {
        char step[48];
        std::snprintf(step, sizeof step, "attention_step%02lld_", static_cast<long long>(i));
        const RgbImage heat = to_rgb8(heat_map(maps[i][static_cast<int64_t>(k)]));
        folder.add_file(step + stem_of(tasks, k) + ".png", encode_png(upscale_nearest(heat, 4)));
      }
    }
  }
  metadata["tasks"] = task_files;
  metadata["files"] = stage_files;
  // error_handler replace: a path or text that is not UTF-8 must not lose the finished sample.
  folder.add_file("metadata.json",
                  metadata.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  return folder.commit();
}

}  // namespace anagram::detail
