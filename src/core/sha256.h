// SHA-256 (FIPS 180-4) as lower-case hex: manifest fingerprints and bundle file hashes.
//
// Written here rather than taken from OpenSSL: the accelerator machines build without a
// package registry, and this keeps the library free of one more carried dependency.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace anagram::detail {

// Incremental: update() with the bytes in order, then hex_digest() once.
class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t size);
  std::string hex_digest();

 private:
  std::array<uint32_t, 8> state_;
  unsigned char buffer_[64] = {};
  size_t buffered_ = 0;
  uint64_t length_ = 0;
};

std::string sha256_hex(const std::string& bytes);

}  // namespace anagram::detail
