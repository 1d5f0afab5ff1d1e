// splitmix64 (Steele, Lea, Flood 2014): a tiny PRNG with identical output on every machine.
// Seeded views (pixel and patch permutations) and the bootstrap intervals of `anagram score`
// draw from it, and the golden scripts mirror it in Python.
#pragma once

#include <cstdint>

namespace anagram::detail {

class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next();
  // Uniform in [0, bound), bound >= 1, by rejection (no modulo bias).
  uint64_t below(uint64_t bound);

 private:
  uint64_t state_;
};

}  // namespace anagram::detail
