#include "anagram/models/noise_aware_clip.h"

#include <torch/nn/functional/upsampling.h>

#include "anagram/core/device.h"
#include "anagram/core/error.h"
#include "models/script_module.h"

namespace anagram {

NoiseAwareClip NoiseAwareClip::load(const Manifest& manifest, const c10::Device& device) {
  if (!manifest.clip) {
    throw Error(ErrorKind::kBundle, "bundle '" + printable(manifest.dir.string()) +
                                        "' has no noise-aware CLIP ('clip' entry)");
  }
  const ClipEntry& entry = *manifest.clip;
  ClipTokenizer tokenizer =
      ClipTokenizer::load(manifest.path_of(entry.bpe_vocab), entry.text_context);
  const std::string dir = manifest.dir.string();
  const detail::ModuleFile image_file{dir, entry.image_encoder, "the CLIP image encoder"};
  const detail::ModuleFile text_file{dir, entry.text_encoder, "the CLIP text encoder"};
  NoiseAwareClip clip(
      std::move(tokenizer), detail::load_script_module(image_file, device, entry.dtype),
      detail::load_script_module(text_file, device, entry.dtype), device, entry.image_size);
  // Both encoders are probed: a broken one must fail here, not at the first balancing step.
  const torch::Tensor text = detail::run_probe(text_file, [&] { return clip.embed_texts({"a"}); });
  detail::expect_shape(text_file, text, {1, entry.embedding_dim});
  const torch::Tensor image = detail::run_probe(image_file, [&] {
    auto generator = at::detail::createCPUGenerator(0);
    const auto x = at::rand({1, 3, entry.image_size, entry.image_size}, generator) * 2 - 1;
    return clip.embed_images(x.to(device), 500);
  });
  detail::expect_shape(image_file, image, {1, entry.embedding_dim});
  return clip;
}

torch::Tensor NoiseAwareClip::embed_texts(const std::vector<std::string>& prompts) const {
  const int64_t n = static_cast<int64_t>(prompts.size());
  const int64_t context = tokenizer_.context_length();
  auto tokens = torch::empty({n, context}, torch::kLong);
  auto lengths = torch::empty({n}, torch::kLong);
  for (int64_t i = 0; i < n; ++i) {
    const ClipTokenizer::Encoding encoding = tokenizer_.encode(prompts[i]);
    std::copy(encoding.tokens.begin(), encoding.tokens.end(), tokens[i].data_ptr<int64_t>());
    lengths[i] = encoding.length;
  }
  torch::NoGradGuard no_grad;
  const detail::ModelWarnings warnings;
  return text_encoder_->forward({tokens.to(device_), lengths.to(device_)})
      .toTensor()
      .to(torch::kFloat);
}

torch::Tensor NoiseAwareClip::embed_images(const torch::Tensor& images, int64_t timestep) const {
  if (!same_device(images.device(), device_)) {
    throw Error(ErrorKind::kRuntime, "the noise-aware CLIP on " + device_.str() +
                                         " got pictures on " + images.device().str());
  }
  torch::Tensor input = images;
  if (images.size(-1) != image_size_ || images.size(-2) != image_size_) {
    // Ref: Anagram-MTL resizes stage II views with torchvision Resize((64, 64)) on tensors:
    // bilinear, align_corners=False, no antialiasing.
    namespace F = torch::nn::functional;
    input = F::interpolate(images, F::InterpolateFuncOptions()
                                       .size(std::vector<int64_t>{image_size_, image_size_})
                                       .mode(torch::kBilinear)
                                       .align_corners(false));
  }
  const auto t =
      torch::full({images.size(0)}, timestep, torch::dtype(torch::kLong).device(device_));
  torch::NoGradGuard no_grad;
  const detail::ModelWarnings warnings;
  return image_encoder_->forward({input, t}).toTensor().to(torch::kFloat);
}

torch::Tensor NoiseAwareClip::scores(const torch::Tensor& view_inputs, int64_t timestep,
                                     const torch::Tensor& text_embeddings,
                                     bool published_input) const {
  // Ref: Anagram-MTL visual_anagrams/mtl.py: calc_alignment_noise_aware(views / 2. + 0.5, ...)
  const torch::Tensor images = published_input ? view_inputs / 2 + 0.5 : view_inputs;
  return (embed_images(images, timestep) * text_embeddings).sum(-1);
}

}  // namespace anagram
