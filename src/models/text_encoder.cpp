#include "anagram/models/text_encoder.h"

#include <spdlog/spdlog.h>

#include "anagram/core/error.h"
#include "anagram/core/error_text.h"
#include "models/script_module.h"

namespace anagram {

T5Tokenizer load_t5_tokenizer(const Manifest& manifest) {
  return T5Tokenizer::load(manifest.path_of(manifest.tokenizer.file), manifest.tokenizer.max_length,
                           manifest.tokenizer.pad_id, manifest.tokenizer.eos_id);
}

TextEncoder TextEncoder::load(const Manifest& manifest,
                              std::shared_ptr<const T5Tokenizer> tokenizer,
                              const c10::Device& device, c10::ScalarType dtype) {
  const detail::ModuleFile file{manifest.dir.string(), manifest.text_encoder.file,
                                "the text encoder"};
  TextEncoder encoder(std::move(tokenizer), detail::load_script_module(file, device, dtype),
                      device);
  const torch::Tensor probe = detail::run_probe(file, [&] { return encoder.encode({""}); });
  detail::expect_shape(file, probe,
                       {1, manifest.tokenizer.max_length, manifest.text_encoder.hidden_size});
  return encoder;
}

TextEncoder TextEncoder::load(const Manifest& manifest, const c10::Device& device,
                              c10::ScalarType dtype) {
  return load(manifest, std::make_shared<const T5Tokenizer>(load_t5_tokenizer(manifest)), device,
              dtype);
}

torch::Tensor TextEncoder::encode(const std::vector<std::string>& prompts) const {
  const int64_t count = static_cast<int64_t>(prompts.size());
  const int64_t length = tokenizer_->max_length();
  auto ids = torch::empty({count, length}, torch::kLong);
  auto mask = torch::empty({count, length}, torch::kLong);
  for (int64_t i = 0; i < count; ++i) {
    const std::string text = T5Tokenizer::preprocess(prompts[i]);
    const T5Tokenizer::Encoding encoding = tokenizer_->encode(text);
    if (encoding.truncated) {
      spdlog::warn("prompt '{}' is longer than {} tokens and was truncated", quote_for_error(text),
                   length);
    }
    std::copy(encoding.ids.begin(), encoding.ids.end(), ids[i].data_ptr<int64_t>());
    std::copy(encoding.attention_mask.begin(), encoding.attention_mask.end(),
              mask[i].data_ptr<int64_t>());
  }
  torch::NoGradGuard no_grad;
  const detail::ModelWarnings warnings;
  return module_->forward({ids.to(device_), mask.to(device_)}).toTensor().to(torch::kFloat);
}

}  // namespace anagram
