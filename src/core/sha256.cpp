#include "core/sha256.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <vector>

#include "anagram/core/error.h"

#ifdef ANAGRAM_WITH_OPENSSL
#include <openssl/evp.h>
#endif

namespace anagram::detail {
namespace {

constexpr std::array<uint32_t, 64> kRoundConstants = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

void compress(std::array<uint32_t, 8>& state, const unsigned char* block) {
  uint32_t w[64];
  for (int i = 0; i < 16; ++i) {
    w[i] = (uint32_t(block[4 * i]) << 24) | (uint32_t(block[4 * i + 1]) << 16) |
           (uint32_t(block[4 * i + 2]) << 8) | uint32_t(block[4 * i + 3]);
  }
  for (int i = 16; i < 64; ++i) {
    uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
    uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
  uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
  for (int i = 0; i < 64; ++i) {
    uint32_t s1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
    uint32_t choose = (e & f) ^ (~e & g);
    uint32_t t1 = h + s1 + choose + kRoundConstants[i] + w[i];
    uint32_t s0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
    uint32_t majority = (a & b) ^ (a & c) ^ (b & c);
    uint32_t t2 = s0 + majority;
    h = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
  }
  state[0] += a, state[1] += b, state[2] += c, state[3] += d;
  state[4] += e, state[5] += f, state[6] += g, state[7] += h;
}

}  // namespace

Sha256::Sha256(bool portable)
    : state_{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
             0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19} {
  (void)portable;
#ifdef ANAGRAM_WITH_OPENSSL
  if (portable) return;
  EVP_MD_CTX* context = EVP_MD_CTX_new();
  if (context && EVP_DigestInit_ex(context, EVP_sha256(), nullptr) == 1) {
    openssl_ = context;
  } else {
    EVP_MD_CTX_free(context);  // fall back to the portable code
  }
#endif
}

Sha256::~Sha256() {
#ifdef ANAGRAM_WITH_OPENSSL
  EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(openssl_));
#endif
}

const char* Sha256::implementation() {
#ifdef ANAGRAM_WITH_OPENSSL
  return "openssl";
#else
  return "portable";
#endif
}

void Sha256::update(const void* data, size_t size) {
#ifdef ANAGRAM_WITH_OPENSSL
  if (openssl_) {
    EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(openssl_), data, size);
    return;
  }
#endif
  const auto* bytes = static_cast<const unsigned char*>(data);
  length_ += size;
  if (buffered_ > 0) {
    const size_t take = std::min(size, sizeof buffer_ - buffered_);
    std::memcpy(buffer_ + buffered_, bytes, take);
    buffered_ += take;
    bytes += take;
    size -= take;
    if (buffered_ < sizeof buffer_) return;
    compress(state_, buffer_);
    buffered_ = 0;
  }
  for (; size >= 64; bytes += 64, size -= 64) compress(state_, bytes);
  std::memcpy(buffer_, bytes, size);
  buffered_ = size;
}

std::string Sha256::hex_digest() {
#ifdef ANAGRAM_WITH_OPENSSL
  if (openssl_) {
    unsigned char digest[32];
    unsigned int length = 0;
    EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(openssl_), digest, &length);
    std::string hex;
    char text[3];
    for (unsigned int i = 0; i < length; ++i) {
      std::snprintf(text, sizeof text, "%02x", digest[i]);
      hex += text;
    }
    return hex;
  }
#endif
  const uint64_t bit_length = length_ * 8;
  const unsigned char pad = 0x80, zero = 0;
  update(&pad, 1);
  while (buffered_ != 56) update(&zero, 1);
  unsigned char length_bytes[8];
  for (int i = 0; i < 8; ++i)
    length_bytes[i] = static_cast<unsigned char>(bit_length >> (56 - 8 * i));
  update(length_bytes, 8);
  std::string hex;
  char text[9];
  for (uint32_t word : state_) {
    std::snprintf(text, sizeof text, "%08x", word);
    hex += text;
  }
  return hex;
}

std::string sha256_of_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorKind::kIo, "cannot read '" + path + "'");
  Sha256 hash;
  std::vector<char> chunk(1 << 20);
  while (in) {
    in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    hash.update(chunk.data(), static_cast<size_t>(in.gcount()));
  }
  if (!in.eof()) throw Error(ErrorKind::kIo, "cannot read '" + path + "'");
  return hash.hex_digest();
}

std::string sha256_hex(const std::string& bytes) {
  Sha256 hash;
  hash.update(bytes.data(), bytes.size());
  return hash.hex_digest();
}

}  // namespace anagram::detail
