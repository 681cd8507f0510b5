// Per-position comparison of two next-token distributions (negative log-likelihood, KL divergence,
// top-1 agreement, probability shift) and the running statistics llama.cpp's perplexity tool reports
// (tools/perplexity/perplexity.cpp, kl_divergence()): PPL, ln(PPL ratio), ΔPPL, mean KLD with
// percentiles, RMS Δp and "same top" share, each with its ±1σ uncertainty.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace qforge::eval {

// log Σ_i exp(logits[i]), max-shifted, accumulated in double.
double LogSumExp(std::span<const float> logits);

// KL(p || q) = Σ p_i log(p_i / q_i) of two probability vectors (terms with p_i = 0 count 0).
double KlDivergence(std::span<const double> p, std::span<const double> q);

// What one scored position contributes. "target" is the token that actually follows in the text.
struct PositionStats {
  double nll = 0;        // -log q(target), the evaluated model
  double nll_ref = 0;    // -log p(target), the reference
  double kld = 0;        // KL(p_ref || q)
  double p_diff = 0;     // q(target) - p(target): llama.cpp's Δp
  bool same_top = false; // argmax p == argmax q (ties: lowest id)
  double kld_bound = 0;  // upper bound on the error of kld from a top-k reference (0 for a full one)
};

// The reference known only on its k most likely tokens (see ref_logits.h). ids are sorted by logit,
// descending (ties: lower id first), so ids[0] is the reference's top token.
struct TopKView {
  double lse = 0;          // log-sum-exp of the full reference logits
  double tail = 0;         // Σ p over the tokens not in ids (computed exactly when saved)
  float target_logit = 0;  // the reference's logit of the target token
  std::span<const int32_t> ids;
  std::span<const float> logits;
};

struct TopKRef {
  double lse = 0, tail = 0;
  float target_logit = 0;
  std::vector<int32_t> ids;
  std::vector<float> logits;
  TopKView view() const { return {lse, tail, target_logit, ids, logits}; }
};

// Keeps the k largest logits of a full distribution (k is clamped to [1, n_vocab]).
void MakeTopK(std::span<const float> logits, int k, int32_t target, TopKRef* out);

// Full reference logits vs evaluated logits (same vocabulary).
PositionStats ComparePosition(std::span<const float> ref_logits, std::span<const float> q_logits, int32_t target);

// Top-k reference. The reference's tail (tokens outside ids, total mass r) is one lumped bucket, compared
// with q's mass s on the same tokens:
//   KLD_k = Σ_{i∈K} p_i log(p_i/q_i) + r log(r/s).
// Truncation error. The log-sum inequality gives Σ_{i∉K} p_i log(p_i/q_i) ≥ r log(r/s), so
//   E = KLD - KLD_k = Σ_{i∉K} p_i log(p_i/q_i) - r log(r/s) ≥ 0   (lumping can only lower the KLD).
// Every tail token has p_i ≤ p_k (the smallest kept probability), so the tail's own contribution
// T = Σ p_i log p_i - Σ p_i log q_i (over i ∉ K) has Σ p_i log p_i ≤ r log p_k, and the cross term
// -Σ p_i log q_i, linear in p, is largest at a vertex of {0 ≤ p_i ≤ p_k, Σ p_i = r}: p_k on each of the
// m = floor(r/p_k) smallest tail q's, the remainder r - m p_k on the next smallest (q_(0) ≤ q_(1) ≤ ...):
//   0 ≤ E ≤ r log p_k + p_k Σ_{j<m} (-log q_(j)) + (r - m p_k)(-log q_(m)) - r log(r/s),
// which is what kld_bound reports (all terms are known: p on K, r, and the full q). It is a worst case
// (every tail token as likely as p_k, placed where q is smallest); the real error is usually far smaller.
// With k = n_vocab the tail is empty and E = 0 exactly.
// mark: scratch of n_vocab bytes, all zero on entry and on return.
PositionStats ComparePosition(const TopKView& ref, std::span<const float> q_logits, int32_t target,
                              std::vector<uint8_t>* mark);

// A value with its ±1σ uncertainty.
struct ValueUnc {
  double value = 0;
  double unc = 0;
};

struct EvalSummary {
  uint64_t count = 0;  // scored positions
  ValueUnc nll, ppl;   // the evaluated model
  bool has_ref = false;
  ValueUnc nll_ref, ppl_ref;
  double cor = 0;  // correlation of ln PPL(Q) and ln PPL(ref)
  ValueUnc ln_ppl_ratio, ppl_ratio, ppl_diff;
  ValueUnc kld, rms_dp, same_top, mean_dp;
  double kld_median = 0, kld_p90 = 0, kld_p99 = 0, kld_p999 = 0, kld_max = 0;
  double dp_max_abs = 0;
  double kld_trunc_bound = 0;  // mean of PositionStats::kld_bound (0 with a full reference)
};

// Sums over positions in llama.cpp's kl_divergence_result layout, plus the per-position KLDs for
// percentiles. Add() in position order gives identical results whatever the thread count.
class EvalAccumulator {
 public:
  explicit EvalAccumulator(bool has_ref) : has_ref_(has_ref) {}
  void Add(const PositionStats& s);
  EvalSummary Summarize() const;
  uint64_t count() const { return count_; }

 private:
  bool has_ref_;
  uint64_t count_ = 0, n_same_top_ = 0;
  double sum_nll_ = 0, sum_nll2_ = 0, sum_nll_ref_ = 0, sum_nll_ref2_ = 0, sum_nll_nll_ref_ = 0;
  double sum_kld_ = 0, sum_kld2_ = 0, sum_dp_ = 0, sum_dp2_ = 0, sum_dp4_ = 0, max_dp_ = 0, sum_bound_ = 0;
  std::vector<float> kld_values_;
};

// llama.cpp's percentile: linear interpolation between sorted values at fraction * (n - 1).
double Percentile(const std::vector<float>& sorted, double fraction);

}  // namespace qforge::eval
