// anagram info BUNDLE: describe and check a model bundle.
#include <torch/cuda.h>

#include <cstdio>
#include <filesystem>

#include "anagram/bundle.h"
#include "anagram/ddpm_scheduler.h"
#include "anagram/device.h"
#include "anagram/generate.h"
#include "anagram/text_encoder.h"
#include "anagram/unet.h"
#include "commands.h"

namespace anagram::cli {
namespace {

std::string file_size(const Manifest& m, const std::string& file) {
  const auto bytes = std::filesystem::file_size(m.path_of(file));
  char text[32];
  std::snprintf(text, sizeof text, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return text;
}

}  // namespace

Runner add_info_command(CLI::App& app) {
  struct Options {
    std::string bundle = default_bundle_path();
    bool json = false;
    bool load = false;
    std::string device = "cpu";
  };
  auto options = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("info", "Describe a model bundle and check its files");
  cmd->add_option("bundle", options->bundle, "Bundle folder (default: the bundled tiny model)");
  cmd->add_flag("--json", options->json, "Print the manifest as JSON");
  cmd->add_flag("--load", options->load,
                "Also load the UNet and text encoder and run a probe call through each");
  cmd->add_option("-d,--device", options->device, "Device for --load")->capture_default_str();

  return [options]() {
    const Manifest m = read_manifest(options->bundle);
    const DDPMSchedulerConfig scheduler = DDPMSchedulerConfig::from_json(m.scheduler);
    if (options->json) {
      std::printf("%s\n", m.raw.dump(2).c_str());
    } else {
      const auto& a = m.unet.attention;
      std::printf("bundle        %s\n", m.dir.string().c_str());
      std::printf("name          %s\n", m.name.c_str());
      if (!m.description.empty()) std::printf("description   %s\n", m.description.c_str());
      std::printf("schema        %d, stage %d, dtype %s\n", m.schema_version, m.stage,
                  dtype_name(m.dtype).c_str());
      std::printf("image         %lld x %lld, %lld channels\n", (long long)m.image_size,
                  (long long)m.image_size, (long long)m.image_channels);
      std::printf("unet          %s (%s), %lld -> %lld channels\n", m.unet.file.c_str(),
                  file_size(m, m.unet.file).c_str(), (long long)m.unet.in_channels,
                  (long long)m.unet.out_channels);
      std::printf("attention     %lld layers at %lldx%lld queries, %lld text tokens\n",
                  (long long)a.num_layers, (long long)a.query_resolution,
                  (long long)a.query_resolution, (long long)a.text_tokens);
      std::printf("text encoder  %s (%s), hidden size %lld\n", m.text_encoder.file.c_str(),
                  file_size(m, m.text_encoder.file).c_str(), (long long)m.text_encoder.hidden_size);
      std::printf("tokenizer     %s, max length %d\n", m.tokenizer.file.c_str(),
                  m.tokenizer.max_length);
      std::printf("scheduler     %s\n", scheduler.to_json().dump().c_str());
      std::printf("sha256        %s\n", m.sha256.c_str());
    }
    if (options->load) {
      const c10::Device device = parse_device(options->device);
      UNet::load(m, device, m.dtype);
      TextEncoder::load(m, device, m.dtype);
      std::printf("load          ok: UNet and text encoder ran a probe call on %s\n",
                  device.str().c_str());
    }
    return 0;
  };
}

}  // namespace anagram::cli
