// anagram info BUNDLE: describe and check a model bundle.
#include <cstdio>
#include <filesystem>

#include "anagram/core/device.h"
#include "anagram/core/dtype.h"
#include "anagram/models/bundle.h"
#include "anagram/pipeline/session.h"
#include "commands.h"

namespace anagram::cli {
namespace {

std::string file_size(const Manifest& m, const std::string& file) {
  std::error_code ec;
  const auto bytes = std::filesystem::file_size(m.path_of(file), ec);
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
  cmd->add_option("bundle", options->bundle,
                  "Bundle folder (default: the bundled demo model, models/demo-glyphs)");
  cmd->add_flag("--json", options->json, "Print the manifest as JSON");
  cmd->add_flag("--load", options->load,
                "Also check the file hashes, load every model (checking its code) and run a "
                "probe call through each");
  cmd->add_option("-d,--device", options->device, "Device for --load")->capture_default_str();

  return [options]() {
    const Manifest m = read_manifest(options->bundle);
    if (options->json) {
      std::printf("%s\n",
                  m.raw.dump(2, ' ', true, nlohmann::json::error_handler_t::replace).c_str());
    } else {
      std::printf("bundle        %s\n", printable(m.dir.string()).c_str());
      std::printf("name          %s\n", printable(m.name).c_str());
      if (!m.description.empty()) {
        std::printf("description   %s\n", printable(m.description, 400).c_str());
      }
      std::printf("schema        %d, dtype %s, %zu stage(s)\n", m.schema_version,
                  dtype_name(m.dtype).c_str(), m.stages.size());
      for (const auto& s : m.stages) {
        std::printf("stage %d       %lld x %lld, %lld channels; unet %s (%s), %lld -> %lld\n",
                    s.stage, (long long)s.image_size, (long long)s.image_size,
                    (long long)s.image_channels, printable(s.unet.file).c_str(),
                    file_size(m, s.unet.file).c_str(), (long long)s.unet.in_channels,
                    (long long)s.unet.out_channels);
        if (s.unet.attention) {
          const auto& a = *s.unet.attention;
          std::printf("  attention   %lld layers at %lldx%lld queries, %lld text tokens\n",
                      (long long)a.num_layers, (long long)a.query_resolution,
                      (long long)a.query_resolution, (long long)a.text_tokens);
        }
        if (s.latent) {
          std::printf("  latents     %lld x %lld, %lld channels; vae decoder %s (%s), x%lld\n",
                      (long long)s.latent->size, (long long)s.latent->size,
                      (long long)s.latent->channels, printable(s.latent->decoder_file).c_str(),
                      file_size(m, s.latent->decoder_file).c_str(), (long long)s.latent->upscale);
        }
        if (s.text) {
          std::printf("  text        %s (%s), hidden size %lld; CLIP BPE %s\n",
                      printable(s.text->encoder_file).c_str(),
                      file_size(m, s.text->encoder_file).c_str(), (long long)s.text->hidden_size,
                      printable(s.text->bpe_vocab).c_str());
        }
        std::printf("  scheduler   %s\n", to_json(s.scheduler).dump().c_str());
        if (s.noising_scheduler) {
          std::printf("  noising     %s, default noise level %lld\n",
                      s.noising_scheduler->to_json().dump().c_str(),
                      (long long)s.default_noise_level);
        }
      }
      std::printf("text encoder  %s (%s), hidden size %lld\n",
                  printable(m.text_encoder.file).c_str(), file_size(m, m.text_encoder.file).c_str(),
                  (long long)m.text_encoder.hidden_size);
      std::printf("tokenizer     %s, max length %d\n", printable(m.tokenizer.file).c_str(),
                  m.tokenizer.max_length);
      if (m.clip) {
        std::printf("clip          %s + %s, %lld-d embeddings (noise vector balancing)\n",
                    printable(m.clip->image_encoder).c_str(),
                    printable(m.clip->text_encoder).c_str(), (long long)m.clip->embedding_dim);
      }
      std::printf("sha256        %s\n", m.sha256.c_str());
    }
    if (options->load) {
      SessionOptions session;
      session.bundle = options->bundle;
      session.device = options->device;
      const auto loaded = Session::open(session, m);
      std::printf("load          ok: %s%s%s ran a probe call on %s (%.1f s)\n",
                  m.schema_version >= 2 ? "file hashes match; " : "",
                  m.has_stage(2) ? "both UNets, the text encoder" : "the UNet, the text encoder",
                  m.clip ? " and the CLIP encoders" : "", loaded->device().str().c_str(),
                  loaded->load_seconds());
    }
    return 0;
  };
}

}  // namespace anagram::cli
