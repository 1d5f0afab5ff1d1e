// anagram/core/dtype.h: the floating-point dtypes a bundle can be exported in, by name.
//
// Basic usage:
//   c10::ScalarType t = anagram::parse_dtype("fp16");   // c10::ScalarType::Half
//   std::string name = anagram::dtype_name(t);          // "float16"
#pragma once

#include <c10/core/ScalarType.h>

#include <string>

namespace anagram {

// "float32" | "float16" | "bfloat16" (or fp32, fp16, bf16) -> ScalarType.
// Throws anagram::Error(kInvalidArgument) otherwise.
c10::ScalarType parse_dtype(const std::string& name);
// The canonical name: "float32", "float16", "bfloat16" (LibTorch's name for any other).
std::string dtype_name(c10::ScalarType dtype);

}  // namespace anagram
