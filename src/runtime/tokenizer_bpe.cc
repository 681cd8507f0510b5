// Byte-level BPE ("gpt2"): the text is split into pre-tokens by hand-written scanners equivalent to the
// GPT-2, Llama 3 and Qwen2 regexes (as llama.cpp's unicode.cpp emulates them), each pre-token is spelled
// in GPT-2's byte alphabet, and adjacent pieces are merged lowest merge rank first.
#include <queue>
#include <vector>

#include "qforge/runtime/tokenizer.h"
#include "unicode_ranges.h"

namespace qforge {
namespace {

// Per-codepoint facts the regexes test. Positions past the end read as 0 (no class at all), which is
// what lets "\s+(?!\S)" tell trailing whitespace apart from whitespace before a word.
enum : uint8_t { kValid = 1, kLetter = 2, kNumber = 4, kSpace = 8 };

class Scanner {
 public:
  Scanner(const std::vector<uint32_t>& cpts, Tokenizer::Pre pre) : cpts_(cpts), pre_(pre) {
    flags_.reserve(cpts.size());
    for (uint32_t c : cpts) {
      const unicode::CharClass cls = unicode::ClassOf(c);
      flags_.push_back(kValid | (cls == unicode::CharClass::kLetter ? kLetter : 0) |
                       (cls == unicode::CharClass::kNumber ? kNumber : 0) | (unicode::IsWhitespace(c) ? kSpace : 0));
    }
  }

  // Lengths (in codepoints) of the consecutive pre-tokens.
  std::vector<size_t> Split() {
    std::vector<size_t> lengths;
    for (size_t pos = 0; pos < cpts_.size();) {
      const size_t end = pre_ == Tokenizer::Pre::kGpt2 ? NextGpt2(pos) : NextLlama3(pos);
      lengths.push_back(end - pos);
      pos = end;
    }
    return lengths;
  }

 private:
  uint8_t F(size_t pos) const { return pos < flags_.size() ? flags_[pos] : 0; }
  uint32_t C(size_t pos) const { return pos < cpts_.size() ? cpts_[pos] : 0xFFFFFFFFu; }
  static bool IsOther(uint8_t f) { return (f & kValid) && !(f & (kLetter | kNumber | kSpace)); }
  static uint32_t Lower(uint32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

  // 's|'t|'re|'ve|'m|'ll|'d, optionally case-insensitive; returns the end or 0.
  size_t Contraction(size_t pos, bool fold) const {
    if (C(pos) != '\'' || pos + 1 >= cpts_.size()) return 0;
    const auto at = [&](size_t p) { return fold ? Lower(C(p)) : C(p); };
    const uint32_t a = at(pos + 1);
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return pos + 2;
    if (pos + 2 >= cpts_.size()) return 0;
    const uint32_t b = at(pos + 2);
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return pos + 3;
    return 0;
  }

  // \s+(?!\S) | \s+ : a whitespace run gives its last character to a following word.
  size_t Whitespace(size_t pos) const {
    size_t n = 0;
    while (F(pos + n) & kSpace) ++n;
    if (n > 1 && pos + n < cpts_.size()) return pos + n - 1;
    return pos + (n > 0 ? n : 1);
  }

  // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  size_t NextGpt2(size_t pos) const {
    if (const size_t end = Contraction(pos, false)) return end;
    const size_t body = C(pos) == ' ' ? pos + 1 : pos;
    const uint8_t f = F(body);
    for (uint8_t cls : {kLetter, kNumber}) {
      if (f & cls) {
        size_t end = body;
        while (F(end) & cls) ++end;
        return end;
      }
    }
    if (IsOther(f)) {
      size_t end = body;
      while (IsOther(F(end))) ++end;
      return end;
    }
    return Whitespace(pos);
  }

  // (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|
  // \s+(?!\S)|\s+   (Qwen2: \p{N} instead of \p{N}{1,3})
  size_t NextLlama3(size_t pos) const {
    if (const size_t end = Contraction(pos, true)) return end;
    const uint32_t c = C(pos);
    const uint8_t f = F(pos);
    if (c != '\r' && c != '\n' && !(f & kNumber) && ((f & kLetter) || (F(pos + 1) & kLetter))) {
      size_t end = pos + 1;
      while (F(end) & kLetter) ++end;
      return end;
    }
    if (f & kNumber) {
      const size_t max_digits = pre_ == Tokenizer::Pre::kQwen2 ? 1 : 3;
      size_t end = pos;
      while ((F(end) & kNumber) && end - pos < max_digits) ++end;
      return end;
    }
    const uint8_t f2 = c == ' ' ? F(pos + 1) : f;
    // llama.cpp tests the first character's validity here, not the one after the optional space.
    if (!(f2 & (kLetter | kNumber | kSpace)) && (f & kValid)) {
      size_t end = c == ' ' ? pos + 1 : pos;
      while (IsOther(F(end))) ++end;
      while (C(end) == '\r' || C(end) == '\n') ++end;
      return end;
    }
    size_t last_newline = 0;
    for (size_t p = pos; F(p) & kSpace; ++p)
      if (C(p) == '\r' || C(p) == '\n') last_newline = p + 1;
    if (last_newline > 0) return last_newline;  // \s*[\r\n]+
    return Whitespace(pos);
  }

  const std::vector<uint32_t>& cpts_;
  Tokenizer::Pre pre_;
  std::vector<uint8_t> flags_;
};

struct Symbol {
  int prev;
  int next;
  size_t start;
  size_t n;
};

struct Bigram {
  int32_t rank;
  int left;
  int right;
  size_t size;
};

// Lowest rank first, then the leftmost pair.
struct BigramOrder {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  }
};

}  // namespace

int32_t Tokenizer::BpeRank(std::string_view left, std::string_view right, std::string* scratch) const {
  scratch->assign(left).push_back(' ');
  scratch->append(right);
  const auto it = bpe_ranks_.find(std::string_view(*scratch));
  return it == bpe_ranks_.end() ? -1 : it->second;
}

void Tokenizer::EncodeBpe(std::string_view text, std::vector<int32_t>* out) const {
  // Invalid UTF-8 bytes become U+FFFD, as llama.cpp's unicode_cpts_from_utf8 does.
  std::vector<uint32_t> cpts;
  cpts.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    uint32_t cpt = 0;
    const size_t len = unicode::ValidUtf8Length(text, pos, &cpt);
    cpts.push_back(len == 0 ? unicode::kReplacement : cpt);
    pos += len == 0 ? 1 : len;
  }
  const std::vector<size_t> lengths = Scanner(cpts, pre_ == Pre::kNone ? Pre::kGpt2 : pre_).Split();

  std::string word, utf8, scratch;
  std::vector<Symbol> symbols;
  size_t first = 0;
  for (size_t length : lengths) {
    utf8.clear();
    for (size_t i = first; i < first + length; ++i) unicode::AppendUtf8(cpts[i], &utf8);
    first += length;
    word.clear();
    for (char byte : utf8) unicode::AppendUtf8(unicode::ByteToUnicode(static_cast<uint8_t>(byte)), &word);
    if (ignore_merges_) {
      if (const int32_t id = Find(word); id >= 0) {
        out->push_back(id);
        continue;
      }
    }

    // The byte-level word is valid UTF-8 by construction: one symbol per character.
    symbols.clear();
    for (size_t pos = 0; pos < word.size();) {
      uint32_t cpt = 0;
      const size_t len = unicode::ValidUtf8Length(word, pos, &cpt);
      const int index = static_cast<int>(symbols.size());
      symbols.push_back({index - 1, pos + len == word.size() ? -1 : index + 1, pos, len});
      pos += len;
    }
    std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue;
    const std::string_view w = word;
    const auto try_add = [&](int left, int right) {
      if (left < 0 || right < 0) return;
      const int32_t rank = BpeRank(w.substr(symbols[left].start, symbols[left].n),
                                   w.substr(symbols[right].start, symbols[right].n), &scratch);
      if (rank >= 0) queue.push({rank, left, right, symbols[left].n + symbols[right].n});
    };
    for (int i = 1; i < static_cast<int>(symbols.size()); ++i) try_add(i - 1, i);
    while (!queue.empty()) {
      const Bigram bigram = queue.top();
      queue.pop();
      Symbol& left = symbols[bigram.left];
      Symbol& right = symbols[bigram.right];
      if (left.n == 0 || right.n == 0 || left.n + right.n != bigram.size) continue;
      left.n += right.n;
      right.n = 0;
      left.next = right.next;
      if (right.next >= 0) symbols[right.next].prev = bigram.left;
      try_add(left.prev, bigram.left);
      try_add(bigram.left, left.next);
    }

    for (int i = symbols.empty() ? -1 : 0; i != -1; i = symbols[i].next) {
      const std::string_view piece = w.substr(symbols[i].start, symbols[i].n);
      if (const int32_t id = Find(piece); id >= 0) {
        out->push_back(id);
        continue;
      }
      // llama.cpp's fallback: single-byte pieces of the spelled text; bytes without one are dropped.
      for (char byte : piece)
        if (const int32_t id = Find(std::string_view(&byte, 1)); id >= 0) out->push_back(id);
    }
  }
}

}  // namespace qforge
