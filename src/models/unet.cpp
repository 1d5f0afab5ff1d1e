#include "anagram/models/unet.h"

#include "anagram/core/error.h"
#include "models/script_module.h"

namespace anagram {

UNet UNet::load(const Manifest& manifest, const StageEntry& stage, const c10::Device& device,
                c10::ScalarType dtype) {
  const detail::ModuleFile file{manifest.dir.string(), stage.unet.file,
                                stage.stage == 1 ? "the UNet" : "the stage II UNet"};
  UNet unet(detail::load_script_module(file, device, dtype), device, dtype,
            stage.unet.class_labels);

  // Probe: one small call with the manifest's shapes, so a mismatched bundle fails now and
  // not in the middle of sampling. Random, not zero, inputs exercise the real code paths.
  const int64_t size = stage.image_size;
  auto generator = at::detail::createCPUGenerator(0);
  const auto x = at::randn({1, stage.unet.in_channels, size, size}, generator);
  const auto text =
      at::randn({1, manifest.tokenizer.max_length, manifest.text_encoder.hidden_size}, generator);
  const torch::Tensor labels =
      unet.class_labels_ ? torch::full({1}, 50, torch::kLong).to(device) : torch::Tensor();
  const torch::Tensor out =
      detail::run_probe(file, [&] { return unet(x.to(device), 500, text.to(device), labels); });
  detail::expect_shape(file, out, {1, stage.unet.out_channels, size, size});
  if (stage.unet.attention && stage.unet.attention->num_layers > 0) {
    const int64_t r = stage.unet.attention->query_resolution;
    const auto maps = detail::run_probe(file, [&] {
      return unet.forward_with_attention(x.to(device), 500, text.to(device)).attention;
    });
    detail::expect_shape(
        file, maps,
        {stage.unet.attention->num_layers, 1, r * r, stage.unet.attention->text_tokens});
  }
  return unet;
}

std::vector<c10::IValue> UNet::inputs(const torch::Tensor& x, int64_t timestep,
                                      const torch::Tensor& text_states,
                                      const torch::Tensor& class_labels) const {
  std::vector<c10::IValue> in = {
      x.to(device_, dtype_),
      torch::scalar_tensor(timestep, torch::dtype(torch::kLong).device(device_)),
      text_states.to(device_, dtype_)};
  if (class_labels_) {
    if (!class_labels.defined() || class_labels.dim() != 1 || class_labels.size(0) != x.size(0)) {
      throw Error(ErrorKind::kRuntime, "the stage II UNet needs one class label per batch entry");
    }
    in.emplace_back(class_labels.to(device_, torch::kLong));
  }
  return in;
}

torch::Tensor UNet::operator()(const torch::Tensor& x, int64_t timestep,
                               const torch::Tensor& text_states,
                               const torch::Tensor& class_labels) const {
  const detail::ModelWarnings warnings;
  return module_->forward(inputs(x, timestep, text_states, class_labels))
      .toTensor()
      .to(torch::kFloat);
}

UNet::OutputWithAttention UNet::forward_with_attention(const torch::Tensor& x, int64_t timestep,
                                                       const torch::Tensor& text_states) const {
  const detail::ModelWarnings warnings;
  const auto result =
      module_->get_method("forward_with_attention")(inputs(x, timestep, text_states, {})).toTuple();
  return {result->elements()[0].toTensor().to(torch::kFloat),
          result->elements()[1].toTensor().to(torch::kFloat)};
}

}  // namespace anagram
