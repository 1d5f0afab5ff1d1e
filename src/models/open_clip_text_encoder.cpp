#include "anagram/models/open_clip_text_encoder.h"

#include <spdlog/spdlog.h>

#include "anagram/core/error_text.h"
#include "models/script_module.h"

namespace anagram {

OpenClipTextEncoder OpenClipTextEncoder::load(const Manifest& manifest, const StageTextEntry& entry,
                                              const c10::Device& device, c10::ScalarType dtype) {
  const detail::ModuleFile file{manifest.dir.string(), entry.encoder_file,
                                "the stage III text encoder"};
  OpenClipTextEncoder encoder(
      ClipTokenizer::load(manifest.path_of(entry.bpe_vocab), entry.max_length),
      detail::load_script_module(file, device, dtype), device);
  const torch::Tensor probe = detail::run_probe(file, [&] { return encoder.encode({""}); });
  detail::expect_shape(file, probe, {1, entry.max_length, entry.hidden_size});
  return encoder;
}

torch::Tensor OpenClipTextEncoder::encode(const std::vector<std::string>& prompts) const {
  const int64_t length = tokenizer_.context_length();
  std::vector<torch::Tensor> states;
  torch::NoGradGuard no_grad;
  for (const auto& prompt : prompts) {
    const ClipTokenizer::Encoding encoding = tokenizer_.encode(prompt);
    if (tokenizer_.encode_plain(prompt, static_cast<size_t>(length)).size() >
        static_cast<size_t>(length - 2)) {
      spdlog::warn("prompt '{}' is longer than {} CLIP tokens and was truncated for stage III",
                   quote_for_error(prompt), length - 2);
    }
    const torch::Tensor ids = torch::tensor(encoding.tokens, torch::kLong).reshape({1, length});
    const detail::ModelWarnings warnings;
    states.push_back(module_->forward({ids.to(device_)}).toTensor().to(torch::kFloat));
  }
  return torch::cat(states, 0);
}

}  // namespace anagram
