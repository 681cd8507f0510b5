// Evaluation plans: llama.cpp's perplexity windows and the per-document protocol (see protocol.h).
#include "qforge/eval/protocol.h"

#include <algorithm>

namespace qforge::eval {

uint64_t EvalPlan::positions() const {
  uint64_t n = 0;
  for (const auto& s : seqs) n += s.scored();
  return n;
}

uint64_t EvalPlan::tokens() const {
  uint64_t n = 0;
  for (const auto& s : seqs) n += s.tokens.size();
  return n;
}

int32_t EvalPlan::max_len() const {
  size_t n = 0;
  for (const auto& s : seqs) n = std::max(n, s.tokens.size());
  return static_cast<int32_t>(n);
}

bool EvalPlan::operator==(const EvalPlan& o) const {
  if (seqs.size() != o.seqs.size()) return false;
  for (size_t i = 0; i < seqs.size(); ++i)
    if (seqs[i].tokens != o.seqs[i].tokens || seqs[i].score_from != o.seqs[i].score_from) return false;
  return true;
}

StatusOr<EvalPlan> BuildWindowPlan(std::span<const int32_t> tokens, int n_ctx, int32_t bos, int chunks) {
  if (n_ctx < 4) return Status::Error("context size must be at least 4 tokens, got " + std::to_string(n_ctx));
  if (tokens.size() < 2 * static_cast<size_t>(n_ctx)) {
    return Status::Error("the text tokenizes to " + std::to_string(tokens.size()) + " tokens; windows of " +
                         std::to_string(n_ctx) + " need at least " + std::to_string(2 * n_ctx) +
                         " (use a smaller -c or --split-on-blank-lines)");
  }
  size_t n_chunk = tokens.size() / static_cast<size_t>(n_ctx);
  if (chunks >= 0) n_chunk = std::min(n_chunk, static_cast<size_t>(chunks));
  EvalPlan plan;
  for (size_t c = 0; c < n_chunk; ++c) {
    EvalSequence s;
    s.tokens.assign(tokens.begin() + c * n_ctx, tokens.begin() + (c + 1) * n_ctx);
    if (bos >= 0) s.tokens[0] = bos;
    s.score_from = n_ctx / 2;
    plan.seqs.push_back(std::move(s));
  }
  return plan;
}

std::vector<std::string_view> SplitOnBlankLines(std::string_view text) {
  auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; };
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find("\n\n", pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view piece = text.substr(pos, end - pos);
    while (!piece.empty() && is_space(piece.front())) piece.remove_prefix(1);
    while (!piece.empty() && is_space(piece.back())) piece.remove_suffix(1);
    if (!piece.empty()) out.push_back(piece);
    pos = end + 2;
  }
  return out;
}

StatusOr<EvalPlan> BuildPlan(std::string_view text, const Tokenizer& tokenizer, const ProtocolOptions& options) {
  if (options.protocol == Protocol::kWindows) {
    std::vector<int32_t> tokens = tokenizer.Encode(text, /*add_bos=*/true);
    const int32_t bos = tokenizer.add_bos() ? tokenizer.bos() : -1;
    return BuildWindowPlan(tokens, options.n_ctx, bos, options.chunks);
  }
  if (options.n_ctx < 2) return Status::Error("context size must be at least 2 tokens");
  EvalPlan plan;
  for (std::string_view piece : SplitOnBlankLines(text)) {
    if (options.chunks >= 0 && plan.seqs.size() >= static_cast<size_t>(options.chunks)) break;
    EvalSequence s;
    s.tokens = tokenizer.Encode(piece, /*add_bos=*/true);
    if (s.tokens.size() > static_cast<size_t>(options.n_ctx)) s.tokens.resize(static_cast<size_t>(options.n_ctx));
    if (s.scored() == 0) continue;
    plan.seqs.push_back(std::move(s));
  }
  if (plan.seqs.empty()) return Status::Error("the text has no piece with a token to predict");
  return plan;
}

}  // namespace qforge::eval
