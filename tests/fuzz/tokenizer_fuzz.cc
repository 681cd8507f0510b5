// libFuzzer target for the tokenizers: arbitrary bytes (invalid UTF-8 included) through Encode and
// Decode of three small in-code vocabularies: SentencePiece with byte fallback (must round-trip every
// input), SentencePiece without byte tokens (unknown characters -> unk), and byte-level BPE with the
// Llama 3 pre-tokenizer (must round-trip every valid UTF-8 input).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "qforge/runtime/tokenizer.h"

namespace {

using qforge::Metadata;
using qforge::MetaValue;
using qforge::Tokenizer;

const std::string kSp = "\xE2\x96\x81";

Tokenizer MakeSpm(bool with_bytes) {
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<int32_t> types = {2, 3, 3};
  if (with_bytes) {
    static const char* kHex = "0123456789ABCDEF";
    for (int b = 0; b < 256; ++b) {
      tokens.push_back(std::string("<0x") + kHex[b >> 4] + kHex[b & 15] + ">");
      types.push_back(6);
    }
  }
  // Equal scores on purpose ("he"/"in", "ab"/"bc") so that the leftmost-first tie rule is exercised.
  const std::vector<std::string> normal = {kSp, "e", "t", "h", "a", "b", "c", "i", "n", "\xC3\xA9", kSp + "t",
                                           "he", "in", kSp + "the", kSp + kSp, "ab", "bc", "abc", "\xE6\x97\xA5"};
  const std::vector<float> normal_scores = {-1, -2, -3, -4, -5, -6, -7, -8, -9, -10,
                                            -3, -4, -4, -2, -5, -6, -6, -1, -11};
  std::vector<float> scores(tokens.size(), 0.0f);
  for (size_t i = 0; i < normal.size(); ++i) {
    tokens.push_back(normal[i]);
    types.push_back(1);
    scores.push_back(normal_scores[i]);
  }
  Metadata m;
  m.Set("tokenizer.ggml.model", MetaValue::String("llama"));
  m.Set("tokenizer.ggml.tokens", MetaValue::StringArray(tokens));
  m.Set("tokenizer.ggml.scores", MetaValue::F32Array(scores));
  m.Set("tokenizer.ggml.token_type", MetaValue::I32Array(types));
  auto tok = Tokenizer::FromMetadata(m);
  if (!tok.ok()) {
    std::fprintf(stderr, "bad fuzz vocabulary: %s\n", tok.status().ToString().c_str());
    std::abort();
  }
  return std::move(tok).value();
}

// GPT-2's byte alphabet (printable Latin-1 as itself, the other bytes as U+0100 + n) as 256 tokens.
std::string ByteChar(int b) {
  static int map[256];
  static bool init = false;
  if (!init) {
    int n = 0;
    for (int c = 0; c < 256; ++c) {
      const bool printable = (c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF);
      map[c] = printable ? c : 256 + n++;
    }
    init = true;
  }
  const int cpt = map[b];
  std::string s;
  if (cpt < 0x80) {
    s.push_back(static_cast<char>(cpt));
  } else {
    s.push_back(static_cast<char>(0xC0 | (cpt >> 6)));
    s.push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  }
  return s;
}

Tokenizer MakeBpe() {
  std::vector<std::string> tokens;
  for (int b = 0; b < 256; ++b) tokens.push_back(ByteChar(b));
  const std::string g = ByteChar(' ');
  for (const std::string& t : {g + "t", std::string("he"), g + "the", std::string("in"), g + g, std::string("12")})
    tokens.push_back(t);
  tokens.push_back("<|end_of_text|>");
  std::vector<int32_t> types(tokens.size(), 1);
  types.back() = 3;
  Metadata m;
  m.Set("tokenizer.ggml.model", MetaValue::String("gpt2"));
  m.Set("tokenizer.ggml.pre", MetaValue::String("llama-bpe"));
  m.Set("tokenizer.ggml.tokens", MetaValue::StringArray(tokens));
  m.Set("tokenizer.ggml.token_type", MetaValue::I32Array(types));
  m.Set("tokenizer.ggml.merges", MetaValue::StringArray({g + " t", "h e", g + "t he", "i n", g + " " + g, "1 2"}));
  m.Set("tokenizer.ggml.bos_token_id", MetaValue::U32(static_cast<uint32_t>(tokens.size() - 1)));
  auto tok = Tokenizer::FromMetadata(m);
  if (!tok.ok()) {
    std::fprintf(stderr, "bad fuzz vocabulary: %s\n", tok.status().ToString().c_str());
    std::abort();
  }
  return std::move(tok).value();
}

// Well-formed UTF-8 in the strict sense: no overlong forms, nothing above U+10FFFF.
bool IsValidUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<uint8_t>(s[i]);
    size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (len == 0 || i + len > s.size()) return false;
    uint32_t v = len == 1 ? c : c & (0x7F >> len);
    for (size_t k = 1; k < len; ++k) {
      if ((static_cast<uint8_t>(s[i + k]) & 0xC0) != 0x80) return false;
      v = (v << 6) | (static_cast<uint8_t>(s[i + k]) & 0x3F);
    }
    // Overlong forms are decoded (as llama.cpp does) and re-spelled shortest, so they cannot round-trip.
    static constexpr uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (v > 0x10FFFF || v < kMin[len]) return false;
    i += len;
  }
  return true;
}

void CheckIds(const Tokenizer& tok, const std::vector<int32_t>& ids) {
  for (int32_t id : ids)
    if (id < 0 || id >= tok.n_vocab()) std::abort();
}

void Fail(const char* what, std::string_view text, const std::string& back) {
  std::fprintf(stderr, "%s: %zu bytes in, %zu bytes back\n", what, text.size(), back.size());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Tokenizer spm_bytes = MakeSpm(true);
  static const Tokenizer spm_chars = MakeSpm(false);
  static const Tokenizer bpe = MakeBpe();
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  // Byte fallback covers every byte, so even invalid UTF-8 must come back unchanged; only a literal
  // U+2581 cannot, since SentencePiece spells spaces with it.
  const auto ids = spm_bytes.Encode(text, true);
  CheckIds(spm_bytes, ids);
  if (ids.empty() || ids[0] != spm_bytes.bos()) std::abort();
  const std::string back = spm_bytes.Decode(ids);
  if (text.find(kSp) == std::string_view::npos && back != text) Fail("spm round trip", text, back);

  const auto char_ids = spm_chars.Encode(text, false);
  CheckIds(spm_chars, char_ids);
  (void)spm_chars.Decode(char_ids);

  const auto bpe_ids = bpe.Encode(text, false);
  CheckIds(bpe, bpe_ids);
  const std::string bpe_back = bpe.Decode(bpe_ids);
  if (IsValidUtf8(text) && bpe_back != text) Fail("bpe round trip", text, bpe_back);
  return 0;
}
