// Internal Unicode helpers for the tokenizers: UTF-8 scanning that never fails on invalid input, and the
// character classes (\p{L}, \p{N}, \s) the BPE pre-tokenizers test.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace qforge::unicode {

constexpr uint32_t kMaxCodepoint = 0x10FFFF;
constexpr uint32_t kReplacement = 0xFFFD;

enum class CharClass : uint8_t { kOther = 0, kLetter = 1, kNumber = 2 };

CharClass ClassOf(uint32_t cpt);
bool IsWhitespace(uint32_t cpt);

// GPT-2's byte-level alphabet: every byte is spelled as one printable codepoint (printable Latin-1 bytes
// as themselves, the rest as U+0100 + n in byte order), so BPE pieces are valid UTF-8 text.
uint32_t ByteToUnicode(uint8_t byte);
// The inverse over a whole piece; codepoints outside the alphabet are copied through as UTF-8.
std::string DecodeByteLevel(std::string_view piece);

// Length of the UTF-8 sequence starting at s[pos] if it is well formed (lead byte, enough continuation
// bytes, codepoint <= U+10FFFF), else 0. Overlong forms and surrogates are accepted, as llama.cpp does.
inline size_t ValidUtf8Length(std::string_view s, size_t pos, uint32_t* cpt) {
  const auto b = [&](size_t i) { return static_cast<uint8_t>(s[pos + i]); };
  const uint8_t lead = b(0);
  size_t len;
  uint32_t value;
  if (lead < 0x80) {
    *cpt = lead;
    return 1;
  } else if ((lead & 0xE0) == 0xC0) {
    len = 2, value = lead & 0x1F;
  } else if ((lead & 0xF0) == 0xE0) {
    len = 3, value = lead & 0x0F;
  } else if ((lead & 0xF8) == 0xF0) {
    len = 4, value = lead & 0x07;
  } else {
    return 0;  // a stray continuation byte or 0xF8..0xFF
  }
  if (pos + len > s.size()) return 0;
  for (size_t i = 1; i < len; ++i) {
    if ((b(i) & 0xC0) != 0x80) return 0;
    value = (value << 6) | (b(i) & 0x3F);
  }
  if (value > kMaxCodepoint) return 0;
  *cpt = value;
  return len;
}

inline void AppendUtf8(uint32_t cpt, std::string* out) {
  if (cpt < 0x80) {
    out->push_back(static_cast<char>(cpt));
  } else if (cpt < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cpt >> 6)));
    out->push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  } else if (cpt < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cpt >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cpt >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cpt >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cpt >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cpt >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  }
}

}  // namespace qforge::unicode
