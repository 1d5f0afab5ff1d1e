#include "anagram/pipeline/embeddings_cache.h"

#include <spdlog/spdlog.h>

#include <cstring>
#include <fstream>

#include "anagram/core/error.h"
#include "anagram/io/image_io.h"
#include "core/sha256.h"

namespace anagram {
namespace {

namespace fs = std::filesystem;

constexpr char kMagic[8] = {'A', 'N', 'A', 'G', 'E', 'M', 'B', '1'};

}  // namespace

EmbeddingsCache::EmbeddingsCache(fs::path dir, std::string model_key)
    : dir_(std::move(dir)), model_key_(std::move(model_key)) {}

fs::path EmbeddingsCache::file_of(const std::string& prompt) const {
  return dir_ / (detail::sha256_hex(model_key_ + "\n" + prompt) + ".emb");
}

torch::Tensor EmbeddingsCache::read(const std::string& prompt, int64_t rows, int64_t cols) const {
  if (!enabled()) return {};
  const fs::path path = file_of(prompt);
  std::error_code ec;
  const auto expected =
      sizeof kMagic + 2 * sizeof(int64_t) + static_cast<uintmax_t>(rows * cols) * sizeof(float);
  if (!fs::is_regular_file(path, ec) || fs::file_size(path, ec) != expected) return {};
  std::ifstream in(path, std::ios::binary);
  char magic[8];
  int64_t shape[2];
  in.read(magic, sizeof magic);
  in.read(reinterpret_cast<char*>(shape), sizeof shape);
  if (!in || std::memcmp(magic, kMagic, sizeof magic) != 0 || shape[0] != rows ||
      shape[1] != cols) {
    return {};
  }
  torch::Tensor values = torch::empty({rows, cols}, torch::kFloat);
  in.read(reinterpret_cast<char*>(values.data_ptr<float>()),
          static_cast<std::streamsize>(rows * cols * sizeof(float)));
  if (!in || !torch::isfinite(values).all().item<bool>()) return {};
  return values;
}

void EmbeddingsCache::write(const std::string& prompt, const torch::Tensor& states) const {
  if (!enabled()) return;
  const torch::Tensor host = states.to(torch::kCPU, torch::kFloat).contiguous();
  const int64_t shape[2] = {host.size(0), host.size(1)};
  std::string bytes(kMagic, sizeof kMagic);
  bytes.append(reinterpret_cast<const char*>(shape), sizeof shape);
  bytes.append(reinterpret_cast<const char*>(host.data_ptr<float>()),
               static_cast<size_t>(host.numel()) * sizeof(float));
  try {
    std::error_code ec;
    fs::create_directories(dir_, ec);
    write_file_atomic(file_of(prompt), bytes);
  } catch (const Error& e) {
    spdlog::warn("embeddings cache: {}", e.what());
  }
}

}  // namespace anagram
