#include "anagram/unet.h"

#include "anagram/error.h"
#include "torchscript_util.h"

namespace anagram {

UNet UNet::load(const Manifest& manifest, const c10::Device& device, c10::ScalarType dtype) {
  auto module = std::make_shared<torch::jit::Module>(
      detail::load_module(manifest.path_of(manifest.unet.file), device, dtype, "the UNet"));
  UNet unet(module, device, dtype);

  // Probe: one small call with the manifest's shapes, so a mismatched bundle fails now and
  // not in the middle of sampling. Random, not zero, inputs exercise the real code paths.
  const int64_t size = manifest.image_size;
  torch::NoGradGuard no_grad;
  auto probe_generator = at::detail::createCPUGenerator(0);
  const auto x = at::randn({1, manifest.unet.in_channels, size, size}, probe_generator);
  const auto text = at::randn({1, manifest.tokenizer.max_length, manifest.text_encoder.hidden_size},
                              probe_generator);
  torch::Tensor out;
  try {
    out = unet(x.to(device), 500, text.to(device));
  } catch (const c10::Error& e) {
    throw Error(ErrorKind::kBundle, "bundle '" + manifest.dir.string() +
                                        "': the UNet fails on a probe input in " +
                                        dtype_name(dtype) + " on " + device.str() + ": " +
                                        detail::first_line(e.what_without_backtrace()));
  }
  const std::vector<int64_t> expected = {1, manifest.unet.out_channels, size, size};
  if (out.sizes().vec() != expected) {
    throw Error(ErrorKind::kBundle, "bundle '" + manifest.dir.string() +
                                        "': the UNet returns shape " + c10::str(out.sizes()) +
                                        " but the manifest implies " + c10::str(expected));
  }
  return unet;
}

std::vector<c10::IValue> UNet::inputs(const torch::Tensor& x, int64_t timestep,
                                      const torch::Tensor& text_states) const {
  return {x.to(device_, dtype_),
          torch::scalar_tensor(timestep, torch::dtype(torch::kLong).device(device_)),
          text_states.to(device_, dtype_)};
}

torch::Tensor UNet::operator()(const torch::Tensor& x, int64_t timestep,
                               const torch::Tensor& text_states) const {
  return module_->forward(inputs(x, timestep, text_states)).toTensor().to(torch::kFloat);
}

UNet::OutputWithAttention UNet::forward_with_attention(const torch::Tensor& x, int64_t timestep,
                                                       const torch::Tensor& text_states) const {
  const auto result =
      module_->get_method("forward_with_attention")(inputs(x, timestep, text_states)).toTuple();
  return {result->elements()[0].toTensor().to(torch::kFloat),
          result->elements()[1].toTensor().to(torch::kFloat)};
}

}  // namespace anagram
