#include "anagram/clip_scorer.h"

#include <torch/nn/functional/upsampling.h>

#include "anagram/error.h"
#include "torchscript_util.h"

namespace anagram {

NoiseAwareClip NoiseAwareClip::load(const Manifest& manifest, const c10::Device& device) {
  if (!manifest.clip) {
    throw Error(ErrorKind::kBundle,
                "bundle '" + manifest.dir.string() + "' has no noise-aware CLIP ('clip' entry)");
  }
  const ClipEntry& entry = *manifest.clip;
  ClipTokenizer tokenizer =
      ClipTokenizer::load(manifest.path_of(entry.bpe_vocab), entry.text_context);
  auto image = std::make_shared<torch::jit::Module>(detail::load_module(
      manifest.path_of(entry.image_encoder), device, entry.dtype, "the CLIP image encoder"));
  auto text = std::make_shared<torch::jit::Module>(detail::load_module(
      manifest.path_of(entry.text_encoder), device, entry.dtype, "the CLIP text encoder"));
  NoiseAwareClip clip(std::move(tokenizer), image, text, device, entry.image_size);
  torch::Tensor probe;
  try {
    probe = clip.embed_texts({"a"});
  } catch (const c10::Error& e) {
    throw Error(ErrorKind::kBundle, "bundle '" + manifest.dir.string() +
                                        "': the CLIP text encoder fails on a probe input: " +
                                        detail::first_line(e.what_without_backtrace()));
  }
  if (probe.dim() != 2 || probe.size(1) != entry.embedding_dim) {
    throw Error(ErrorKind::kBundle, "bundle '" + manifest.dir.string() +
                                        "': the CLIP text encoder returns shape " +
                                        c10::str(probe.sizes()) + ", expected [1, " +
                                        std::to_string(entry.embedding_dim) + "]");
  }
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
  return text_encoder_->forward({tokens.to(device_), lengths.to(device_)})
      .toTensor()
      .to(torch::kFloat);
}

torch::Tensor NoiseAwareClip::embed_images(const torch::Tensor& images, int64_t timestep) const {
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
