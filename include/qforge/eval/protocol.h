// Which token sequences an evaluation runs and which of their positions it scores. Two protocols:
//  - windows (llama.cpp perplexity, WikiText style): tokenize the whole text once with BOS, cut it into
//    non-overlapping windows of n_ctx tokens (a partial last window is dropped), put BOS in place of the
//    first token of each window, score only the second half: positions n_ctx/2 .. n_ctx-2, each
//    predicting the next token (n_ctx - 1 - n_ctx/2 predictions per window).
//  - documents (--split-on-blank-lines): split the text on "\n\n", strip whitespace, drop empty pieces;
//    each piece is BOS + its tokens truncated to n_ctx, and every predicted token is scored.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "qforge/core/status.h"
#include "qforge/runtime/tokenizer.h"

namespace qforge::eval {

// One sequence evaluated from position 0; the logits at positions score_from .. size-2 are scored
// against tokens[i + 1].
struct EvalSequence {
  std::vector<int32_t> tokens;
  int32_t score_from = 0;
  uint64_t scored() const {
    return tokens.size() > static_cast<size_t>(score_from) + 1 ? tokens.size() - 1 - score_from : 0;
  }
};

struct EvalPlan {
  std::vector<EvalSequence> seqs;
  uint64_t positions() const;
  uint64_t tokens() const;
  int32_t max_len() const;
  bool operator==(const EvalPlan& o) const;
};

enum class Protocol { kWindows, kDocuments };

struct ProtocolOptions {
  Protocol protocol = Protocol::kWindows;
  int n_ctx = 512;
  int chunks = -1;  // windows or documents to use; < 0: all
};

// Windows over an already tokenized text. bos < 0: the first token is left as it is. Fails with fewer
// than 2 * n_ctx tokens (llama.cpp's rule) or n_ctx < 4.
StatusOr<EvalPlan> BuildWindowPlan(std::span<const int32_t> tokens, int n_ctx, int32_t bos, int chunks);

// Pieces of text separated by "\n\n", stripped of ASCII whitespace (Python's str.strip()), empty ones dropped.
std::vector<std::string_view> SplitOnBlankLines(std::string_view text);

// The whole protocol from text: tokenization included (Tokenizer::Encode with add_bos = true).
StatusOr<EvalPlan> BuildPlan(std::string_view text, const Tokenizer& tokenizer, const ProtocolOptions& options);

}  // namespace qforge::eval
