// anagram/core/device.h: turning device / dtype requests into LibTorch values, checked up front.
//
// Basic usage:
//   c10::Device device = anagram::parse_device("cuda");                   // cuda:0, checked
//   c10::ScalarType dtype = anagram::resolve_dtype("auto", manifest.dtype, device);
//   if (!anagram::same_device(x.device(), device)) ...                   // refuse, do not copy
#pragma once

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <string>

namespace anagram {

// "cpu", "cuda" or "cuda:N". Throws anagram::Error(kInvalidArgument) for anything else (N is a
// decimal index below 256), and Error(kDevice) when CUDA is asked for but this LibTorch build
// has no CUDA support, no GPU is visible, or N is out of range.
c10::Device parse_device(const std::string& spec, const std::string& field = "device");

// "auto" is the bundle's own dtype; float32 | float16 | bfloat16 must name that same dtype
// (TorchScript traces keep the dtype they were traced in). float16 on the CPU is refused:
// LibTorch lacks most half-precision CPU kernels. Throws anagram::Error(kDevice).
// Whether tensors on `a` may be used by a helper built for `b`: same type, and the same index
// where both name one ("cuda" without an index is the current device).
bool same_device(const c10::Device& a, const c10::Device& b);

c10::ScalarType resolve_dtype(const std::string& spec, c10::ScalarType bundle_dtype,
                              const c10::Device& device);

}  // namespace anagram
