#include "anagram/core/error_text.h"

#include <c10/util/Exception.h>

#include <cstdio>
#include <sstream>
#include <vector>

namespace anagram {
namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    const auto first = line.find_first_not_of(" \t\r");
    if (first != std::string::npos) lines.push_back(line.substr(first));
  }
  return lines;
}

std::string clean(const std::string& line, size_t max_length) {
  std::string out;
  for (unsigned char c : line) {
    out.push_back(c < 0x20 || c == 0x7f ? ' ' : static_cast<char>(c));
  }
  if (out.size() > max_length) {
    size_t cut = max_length;
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;
    out = out.substr(0, cut) + "...";
  }
  return out;
}

}  // namespace

std::string describe_exception(const std::exception& e, size_t max_length) {
  std::string text;
  if (const auto* c10_error = dynamic_cast<const c10::Error*>(&e)) {
    text = c10_error->what_without_backtrace();
  } else {
    text = e.what();
  }
  const std::vector<std::string> lines = lines_of(text);
  if (lines.empty()) return "unknown error";
  // A TorchScript traceback ends with the error itself, e.g. "RuntimeError: shape mismatch".
  if (text.find("Traceback of TorchScript") != std::string::npos ||
      text.find("The following operation failed in the TorchScript interpreter") !=
          std::string::npos) {
    for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
      if (it->find("Error: ") != std::string::npos || it->find("Error:") == it->size() - 6) {
        return clean(*it, max_length);
      }
    }
    return clean(lines.back(), max_length);
  }
  return clean(lines.front(), max_length);
}

std::string quote_for_error(const std::string& text, size_t max_length) {
  // Length of the well-formed UTF-8 sequence at i, or 0 (then the byte is shown escaped).
  const auto sequence = [&](size_t i) -> size_t {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    const size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || c == 0xC0 || c == 0xC1 || i + n > text.size()) return 0;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(text[i + k]) & 0xC0) != 0x80) return 0;
    }
    return n;
  };
  std::string out;
  size_t i = 0;
  while (i < text.size() && out.size() < max_length) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    const size_t n = sequence(i);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (n == 0 || c < 0x20 || c == 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    } else {
      out.append(text, i, n);
      i += n;
      continue;
    }
    ++i;
  }
  if (i < text.size()) out += "... (" + std::to_string(text.size()) + " bytes)";
  return out;
}

std::string printable(const std::string& text, size_t max_length) {
  std::string out;
  for (unsigned char c : text) {
    if (out.size() >= max_length) {
      out += "...";
      break;
    }
    out.push_back(c < 0x20 || c == 0x7f ? '?' : static_cast<char>(c));
  }
  return out;
}

}  // namespace anagram
