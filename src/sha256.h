// SHA-256 of a byte string, as lowercase hex (FIPS 180-4). Used to fingerprint manifests.
#pragma once

#include <string>

namespace anagram::detail {

std::string sha256_hex(const std::string& bytes);

}  // namespace anagram::detail
