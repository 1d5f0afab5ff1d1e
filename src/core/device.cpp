#include "anagram/core/device.h"

#include <torch/cuda.h>

#include "anagram/core/dtype.h"
#include "anagram/core/error.h"

namespace anagram {
namespace {

[[noreturn]] void unknown_device(const std::string& spec, const std::string& field) {
  std::string shown = spec.size() > 40 ? spec.substr(0, 40) + "..." : spec;
  for (char& c : shown) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  throw Error(ErrorKind::kInvalidArgument, field,
              "unknown device '" + shown + "' (expected cpu, cuda or cuda:N)");
}

}  // namespace

c10::Device parse_device(const std::string& spec, const std::string& field) {
  if (spec == "cpu") return c10::Device(c10::kCPU);
  if (spec.rfind("cuda", 0) != 0) unknown_device(spec, field);
  int index = 0;
  if (spec.size() > 4) {
    const std::string digits = spec.substr(5);
    // c10::DeviceIndex is 8 bits: three digits at most, and below 256.
    if (spec[4] != ':' || digits.empty() || digits.size() > 3 ||
        digits.find_first_not_of("0123456789") != std::string::npos) {
      unknown_device(spec, field);
    }
    index = std::stoi(digits);
    if (index > 255) unknown_device(spec, field);
  }
  if (!torch::cuda::is_available()) {
    throw Error(ErrorKind::kDevice, "device",
                spec +
                    " asked for CUDA, but no CUDA GPU is available to this build of anagram "
                    "(use cpu)");
  }
  const int count = static_cast<int>(torch::cuda::device_count());
  if (index >= count) {
    throw Error(ErrorKind::kDevice, field,
                spec + ": only " + std::to_string(count) +
                    " CUDA device(s) visible (cuda:0..cuda:" + std::to_string(count - 1) + ")");
  }
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
}

bool same_device(const c10::Device& a, const c10::Device& b) {
  return a.type() == b.type() && (a.index() == b.index() || a.index() < 0 || b.index() < 0);
}

c10::ScalarType resolve_dtype(const std::string& spec, c10::ScalarType bundle_dtype,
                              const c10::Device& device) {
  c10::ScalarType dtype = bundle_dtype;
  if (spec != "auto") {
    try {
      dtype = parse_dtype(spec);
    } catch (const Error& e) {
      throw Error(ErrorKind::kInvalidArgument, "dtype", e.detail());
    }
  }
  // A traced module keeps the dtype it was traced in (diffusers casts to it inside), so a
  // bundle runs in its own dtype only.
  if (dtype != bundle_dtype) {
    throw Error(ErrorKind::kDevice, "dtype",
                spec + ": this bundle was exported in " + dtype_name(bundle_dtype) +
                    " and runs only in that dtype; export a " + dtype_name(dtype) +
                    " bundle with scripts/export/export_if.py --dtype " + dtype_name(dtype));
  }
  if (device.is_cpu() && dtype == c10::ScalarType::Half) {
    throw Error(ErrorKind::kDevice, "dtype",
                "this bundle is float16, which LibTorch cannot run on the CPU; use a cuda device");
  }
  return dtype;
}

}  // namespace anagram
