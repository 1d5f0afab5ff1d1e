#include "anagram/models/unet.h"

#include <torch/csrc/jit/runtime/graph_executor.h>

#include <algorithm>
#include <cstdlib>

#include "anagram/core/device.h"
#include "anagram/core/error.h"
#include "models/script_module.h"

namespace anagram {

UNet UNet::load(const Manifest& manifest, const StageEntry& stage, const c10::Device& device,
                c10::ScalarType dtype) {
  static const char* const kNames[] = {"the UNet", "the stage II UNet", "the stage III UNet"};
  const detail::ModuleFile file{manifest.dir.string(), stage.unet.file,
                                kNames[std::clamp(stage.stage, 1, 3) - 1]};
  UNet unet(detail::load_script_module(file, device, dtype), device, dtype,
            stage.unet.class_labels);

  // Probe: one small call with the manifest's shapes, so a mismatched bundle fails now and
  // not in the middle of sampling. Random, not zero, inputs exercise the real code paths. A
  // latent UNet is probed on a small grid (a multiple of 8): at full size the x4 upscaler's
  // call takes minutes on a CPU.
  const int64_t size = stage.latent ? std::min<int64_t>(stage.latent->size, 16) : stage.image_size;
  const int64_t tokens = stage.text ? stage.text->max_length : manifest.tokenizer.max_length;
  const int64_t hidden = stage.text ? stage.text->hidden_size : manifest.text_encoder.hidden_size;
  auto generator = at::detail::createCPUGenerator(0);
  const auto x = at::randn({1, stage.unet.in_channels, size, size}, generator);
  const auto text = at::randn({1, tokens, hidden}, generator);
  const torch::Tensor labels =
      unet.class_labels_ ? torch::full({1}, stage.default_noise_level, torch::kLong).to(device)
                         : torch::Tensor();
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

namespace {

// TorchScript's profiling executor re-profiles and re-optimises a graph for every new input
// shape (CFG batch, the anti-segregation half batch, each stage): the first steps of a first
// sample ran 100x slower than later ones on a GPU. Sampling runs the unoptimised graph
// instead (the interpreter calls the same kernels); ANAGRAM_JIT_OPTIMIZE=1 restores the
// optimising executor, for comparison (scripts/gpu_check.sh measures both).
bool jit_optimize() {
  static const bool enabled = [] {
    const char* value = std::getenv("ANAGRAM_JIT_OPTIMIZE");
    return value && std::string(value) == "1";
  }();
  return enabled;
}

}  // namespace

std::vector<c10::IValue> UNet::inputs(const torch::Tensor& x, int64_t timestep,
                                      const torch::Tensor& text_states,
                                      const torch::Tensor& class_labels) const {
  // Inputs must already be on the UNet's device: a silent copy here would hide a device
  // mistake as a per-step host round trip. Only the dtype is converted (float16 bundles).
  for (const torch::Tensor* t : {&x, &text_states, &class_labels}) {
    if (t->defined() && !same_device(t->device(), device_)) {
      throw Error(ErrorKind::kRuntime,
                  "the UNet on " + device_.str() + " got a tensor on " + t->device().str());
    }
  }
  std::vector<c10::IValue> in = {
      x.to(dtype_), torch::scalar_tensor(timestep, torch::dtype(torch::kLong).device(device_)),
      text_states.to(dtype_)};
  if (class_labels_) {
    if (!class_labels.defined() || class_labels.dim() != 1 || class_labels.size(0) != x.size(0)) {
      throw Error(ErrorKind::kRuntime,
                  "a super-resolution UNet needs one class label per batch entry");
    }
    in.emplace_back(class_labels.to(torch::kLong));
  }
  return in;
}

torch::Tensor UNet::operator()(const torch::Tensor& x, int64_t timestep,
                               const torch::Tensor& text_states,
                               const torch::Tensor& class_labels) const {
  torch::jit::GraphOptimizerEnabledGuard optimize(jit_optimize());
  const detail::ModelWarnings warnings;
  return module_->forward(inputs(x, timestep, text_states, class_labels))
      .toTensor()
      .to(torch::kFloat);
}

UNet::OutputWithAttention UNet::forward_with_attention(const torch::Tensor& x, int64_t timestep,
                                                       const torch::Tensor& text_states) const {
  torch::jit::GraphOptimizerEnabledGuard optimize(jit_optimize());
  const detail::ModelWarnings warnings;
  const auto result =
      module_->get_method("forward_with_attention")(inputs(x, timestep, text_states, {})).toTuple();
  return {result->elements()[0].toTensor().to(torch::kFloat),
          result->elements()[1].toTensor().to(torch::kFloat)};
}

}  // namespace anagram
