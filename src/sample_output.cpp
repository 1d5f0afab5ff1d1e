#include "sample_output.h"

#include "anagram/image_io.h"
#include "anagram/output.h"

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

}  // namespace

std::filesystem::path write_sample(const std::filesystem::path& out, const std::string& name,
                                   const ViewStack& views, const std::vector<Task>& tasks,
                                   const SampleImages& images, nlohmann::json metadata) {
  const torch::Tensor seen = views.apply_each(images.image).to(torch::kCPU);
  SampleFolder folder(out, name);
  folder.add_file("anagram.png", encode_png(to_rgb8(images.image)));
  std::vector<RgbImage> tiles;
  std::vector<std::string> captions;
  nlohmann::json task_files = nlohmann::json::array();
  for (size_t k = 0; k < tasks.size(); ++k) {
    const RgbImage picture = to_rgb8(seen[static_cast<int64_t>(k)]);
    const std::string stem =
        std::to_string(k) + "_" + tasks[k].view->name() + "_" + slugify(tasks[k].prompt);
    folder.add_file("view_" + stem + ".png", encode_png(picture));
    tiles.push_back(upscale_nearest(picture, display_factor(views.height())));
    captions.push_back(tasks[k].view->name() + ": " + tasks[k].prompt);
    nlohmann::json entry = {{"view", tasks[k].view->name()},
                            {"view_arg", tasks[k].view->arg()},
                            {"prompt", tasks[k].prompt},
                            {"file", "view_" + stem + ".png"}};
    if (!images.attention_maps.empty()) {
      entry["attention_files"] = "attention_step<NN>_" + stem + ".png";
      const auto maps = torch::stack(images.attention_maps).to(torch::kCPU);  // (steps, N, R, R)
      for (int64_t i = 0; i < maps.size(0); ++i) {
        char step[32];
        std::snprintf(step, sizeof step, "attention_step%02lld_", static_cast<long long>(i));
        const RgbImage heat = to_rgb8(heat_map(maps[i][static_cast<int64_t>(k)]));
        folder.add_file(step + stem + ".png", encode_png(upscale_nearest(heat, 4)));
      }
    }
    task_files.push_back(entry);
  }
  folder.add_file("sheet.png", encode_png(make_sheet(tiles, captions)));
  metadata["tasks"] = task_files;
  folder.add_file("metadata.json", metadata.dump(2) + "\n");
  return folder.commit();
}

}  // namespace anagram::detail
