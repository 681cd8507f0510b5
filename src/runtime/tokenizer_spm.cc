// SentencePiece ("llama") encoding as llama.cpp's llm_tokenizer_spm_session does it: start from single
// characters and repeatedly merge the adjacent pair whose concatenation is the highest-scoring token
// (ties: leftmost), then spell leftovers as byte tokens, or unk when the vocabulary has none.
#include <queue>
#include <vector>

#include "qforge/runtime/tokenizer.h"
#include "unicode_ranges.h"

namespace qforge {
namespace {

// A run of the text; merged runs keep the left symbol and empty the right one (n = 0).
struct Symbol {
  int prev;
  int next;
  size_t start;
  size_t n;
};

struct Bigram {
  float score;
  int left;
  int right;
  size_t size;  // bytes of both symbols when queued: a later mismatch means the pair is stale
};

// std::priority_queue pops the "largest": higher score first, then the smaller left index.
struct BigramOrder {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

}  // namespace

void Tokenizer::EncodeSpm(std::string_view text, std::vector<int32_t>* out) const {
  std::vector<Symbol> symbols;
  symbols.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    uint32_t cpt = 0;
    size_t len = unicode::ValidUtf8Length(text, pos, &cpt);
    if (len == 0) len = 1;  // an invalid byte is a character of its own
    const int index = static_cast<int>(symbols.size());
    symbols.push_back({index - 1, pos + len == text.size() ? -1 : index + 1, pos, len});
    pos += len;
  }

  std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue;
  const auto try_add = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    // Adjacent live symbols are contiguous in the text, so the pair is one view.
    const size_t size = symbols[left].n + symbols[right].n;
    const int32_t id = Find(text.substr(symbols[left].start, size));
    if (id < 0) return;
    queue.push({scores_[static_cast<size_t>(id)], left, right, size});
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
    const std::string_view piece = text.substr(symbols[i].start, symbols[i].n);
    if (const int32_t id = Find(piece); id >= 0) {
      out->push_back(id);
      continue;
    }
    // Only single characters can be left over (merges always form tokens): spell them in bytes.
    bool all_bytes = true;
    for (char c : piece) all_bytes = all_bytes && byte_token_[static_cast<uint8_t>(c)] >= 0;
    if (all_bytes) {
      for (char c : piece) out->push_back(byte_token_[static_cast<uint8_t>(c)]);
    } else if (unk_ >= 0) {
      // No byte fallback (BabyLlama): SentencePiece's unk. llama.cpp aborts here instead.
      out->push_back(unk_);
    }
  }
}

}  // namespace qforge
