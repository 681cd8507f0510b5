// Strict UTF-8 validation for strings read from model files. GGUF strings, SentencePiece pieces and
// llama2.c vocabularies are UTF-8 by definition; a file that breaks this is corrupt, and letting such
// bytes through would only move the failure to a JSON printer or a tokenizer far from the file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace qforge::formats_internal {

// Byte index of the first byte that does not start a well-formed UTF-8 sequence (Unicode 15, table
// 3-7: no overlong forms, no surrogates, nothing above U+10FFFF), or npos if the whole text is valid.
inline size_t FindInvalidUtf8(std::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    const auto b0 = static_cast<uint8_t>(s[i]);
    if (b0 < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    uint8_t lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
    if (b0 >= 0xC2 && b0 <= 0xDF) {
      len = 2;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      len = 3;
      if (b0 == 0xE0) lo = 0xA0;  // overlong
      if (b0 == 0xED) hi = 0x9F;  // surrogates
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      len = 4;
      if (b0 == 0xF0) lo = 0x90;  // overlong
      if (b0 == 0xF4) hi = 0x8F;  // above U+10FFFF
    } else {
      return i;
    }
    if (n - i < len) return i;
    const auto b1 = static_cast<uint8_t>(s[i + 1]);
    if (b1 < lo || b1 > hi) return i;
    for (size_t k = 2; k < len; ++k) {
      const auto b = static_cast<uint8_t>(s[i + k]);
      if (b < 0x80 || b > 0xBF) return i;
    }
    i += len;
  }
  return std::string_view::npos;
}

}  // namespace qforge::formats_internal
