// SHA-256 (FIPS 180-4) as lower-case hex: manifest fingerprints and bundle file hashes.
//
// OpenSSL's libcrypto when the build finds it (Debian's libssl-dev): it uses the CPU's SHA
// instructions, about 6x faster than portable code here (0.3 s against 1.8 s for 256 MB),
// which matters for a 9.5 GB T5-XXL checked at every start. The portable implementation below
// is the fallback for machines that build without a package registry.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace anagram::detail {

// Incremental: update() with the bytes in order, then hex_digest() once.
class Sha256 {
 public:
  // portable: use the portable code even where OpenSSL is there (tests compare the two).
  explicit Sha256(bool portable = false);
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, size_t size);
  std::string hex_digest();
  static const char* implementation();  // "openssl" or "portable"

 private:
  void* openssl_ = nullptr;  // EVP_MD_CTX* when built with OpenSSL
  std::array<uint32_t, 8> state_;
  unsigned char buffer_[64] = {};
  size_t buffered_ = 0;
  uint64_t length_ = 0;
};

std::string sha256_hex(const std::string& bytes);
// Of a file's bytes, read in 1 MiB chunks. Throws Error(kIo) when it cannot be read.
std::string sha256_of_file(const std::string& path);

}  // namespace anagram::detail
