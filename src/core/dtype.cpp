#include "anagram/core/dtype.h"

#include "anagram/core/error.h"

namespace anagram {

c10::ScalarType parse_dtype(const std::string& name) {
  if (name == "float32" || name == "fp32") return c10::ScalarType::Float;
  if (name == "float16" || name == "fp16") return c10::ScalarType::Half;
  if (name == "bfloat16" || name == "bf16") return c10::ScalarType::BFloat16;
  throw Error(ErrorKind::kInvalidArgument,
              "unknown dtype '" + name + "' (expected float32, float16 or bfloat16)");
}

std::string dtype_name(c10::ScalarType dtype) {
  switch (dtype) {
    case c10::ScalarType::Float:
      return "float32";
    case c10::ScalarType::Half:
      return "float16";
    case c10::ScalarType::BFloat16:
      return "bfloat16";
    default:
      return c10::toString(dtype);
  }
}

}  // namespace anagram
