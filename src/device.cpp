#include "anagram/device.h"

#include <torch/cuda.h>

#include "anagram/bundle.h"
#include "anagram/error.h"

namespace anagram {

c10::Device parse_device(const std::string& spec) {
  if (spec == "cpu") return c10::Device(c10::kCPU);
  if (spec.rfind("cuda", 0) != 0) {
    throw Error(ErrorKind::kInvalidArgument,
                "unknown device '" + spec + "' (expected cpu, cuda or cuda:N)");
  }
  int index = 0;
  if (spec.size() > 4) {
    const std::string suffix = spec.substr(4);
    if (suffix.size() < 2 || suffix[0] != ':' ||
        suffix.find_first_not_of("0123456789", 1) != std::string::npos) {
      throw Error(ErrorKind::kInvalidArgument,
                  "unknown device '" + spec + "' (expected cpu, cuda or cuda:N)");
    }
    index = std::stoi(suffix.substr(1));
  }
  if (!torch::cuda::is_available()) {
    throw Error(ErrorKind::kDevice, "--device " + spec +
                                        " asked for CUDA, but no CUDA GPU is available to this "
                                        "build of anagram (use --device cpu)");
  }
  const int count = static_cast<int>(torch::cuda::device_count());
  if (index >= count) {
    throw Error(ErrorKind::kDevice,
                "--device " + spec + ": only " + std::to_string(count) +
                    " CUDA device(s) visible (cuda:0..cuda:" + std::to_string(count - 1) + ")");
  }
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
}

c10::ScalarType resolve_dtype(const std::string& spec, c10::ScalarType bundle_dtype,
                              const c10::Device& device) {
  const c10::ScalarType dtype = spec == "auto" ? bundle_dtype : parse_dtype(spec);
  // A traced module keeps the dtype it was traced in (diffusers casts to it inside), so a
  // bundle runs in its own dtype only.
  if (dtype != bundle_dtype) {
    throw Error(ErrorKind::kDevice,
                "--dtype " + spec + ": this bundle was exported in " + dtype_name(bundle_dtype) +
                    " and runs only in that dtype; export a " + dtype_name(dtype) +
                    " bundle with scripts/export_if.py --dtype " + dtype_name(dtype));
  }
  if (device.is_cpu() && dtype == c10::ScalarType::Half) {
    throw Error(ErrorKind::kDevice,
                "this bundle is float16, which LibTorch cannot run on the CPU; use --device cuda");
  }
  return dtype;
}

}  // namespace anagram
