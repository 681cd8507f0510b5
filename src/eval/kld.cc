// Per-position distribution comparison and llama.cpp-compatible running statistics (see kld.h).
#include "qforge/eval/kld.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace qforge::eval {
namespace {

int ArgMax(std::span<const float> v) {
  int best = 0;
  for (size_t i = 1; i < v.size(); ++i)
    if (v[i] > v[best]) best = static_cast<int>(i);
  return best;
}

// llama.cpp's mean_and_uncertainty: the mean and the standard error of the mean (0 for <= 10 values).
ValueUnc MeanAndUnc(double sum, double sum2, uint64_t count) {
  if (count < 1) return {};
  const double f = sum / static_cast<double>(count);
  double df = sum2 / static_cast<double>(count) - f * f;
  df = df > 0 && count > 10 ? std::sqrt(df / static_cast<double>(count - 1)) : 0.0;
  return {f, df};
}

// llama.cpp's covariance of the two means (0 for < 10 values).
double Covariance(double suma, double sumb, double sumab, uint64_t count) {
  if (count < 10) return 0.0;
  const double n = static_cast<double>(count);
  return (sumab / n - (suma / n) * (sumb / n)) / (n - 1);
}

}  // namespace

double LogSumExp(std::span<const float> logits) {
  if (logits.empty()) return -std::numeric_limits<double>::infinity();
  const double mx = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float l : logits) sum += std::exp(static_cast<double>(l) - mx);
  return mx + std::log(sum);
}

double KlDivergence(std::span<const double> p, std::span<const double> q) {
  double kld = 0;
  for (size_t i = 0; i < p.size() && i < q.size(); ++i)
    if (p[i] > 0) kld += p[i] * (std::log(p[i]) - std::log(q[i]));
  return kld;
}

void MakeTopK(std::span<const float> logits, int k, int32_t target, TopKRef* out) {
  const int n = static_cast<int>(logits.size());
  k = std::clamp(k, 1, n);
  std::vector<int32_t> idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  auto by_logit = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), by_logit);
  out->lse = LogSumExp(logits);
  out->ids.assign(idx.begin(), idx.begin() + k);
  out->logits.resize(static_cast<size_t>(k));
  for (int i = 0; i < k; ++i) out->logits[i] = logits[out->ids[i]];
  double tail = 0;  // summed directly: 1 - Σ_K p would cancel catastrophically when the tail is small
  for (int i = k; i < n; ++i) tail += std::exp(static_cast<double>(logits[idx[i]]) - out->lse);
  out->tail = tail;
  out->target_logit = logits[target];
}

PositionStats ComparePosition(std::span<const float> ref_logits, std::span<const float> q_logits, int32_t target) {
  PositionStats s;
  const double lse_p = LogSumExp(ref_logits), lse_q = LogSumExp(q_logits);
  double kld = 0;
  for (size_t i = 0; i < ref_logits.size(); ++i) {
    const double lp = ref_logits[i] - lse_p, lq = q_logits[i] - lse_q;
    const double p = std::exp(lp);
    if (p > 0) kld += p * (lp - lq);
  }
  s.kld = kld;
  s.nll = lse_q - q_logits[target];
  s.nll_ref = lse_p - ref_logits[target];
  s.p_diff = std::exp(-s.nll) - std::exp(-s.nll_ref);
  s.same_top = ArgMax(ref_logits) == ArgMax(q_logits);
  return s;
}

PositionStats ComparePosition(const TopKView& ref, std::span<const float> q_logits, int32_t target,
                              std::vector<uint8_t>* mark) {
  PositionStats s;
  const double lse_q = LogSumExp(q_logits);
  double kld = 0;
  for (size_t j = 0; j < ref.ids.size(); ++j) {
    const int32_t i = ref.ids[j];
    (*mark)[i] = 1;
    const double lp = ref.logits[j] - ref.lse, lq = q_logits[i] - lse_q;
    const double p = std::exp(lp);
    if (p > 0) kld += p * (lp - lq);
  }
  const double r = ref.tail;
  double s_mass = 0;
  std::vector<double> tail_q;
  tail_q.reserve(q_logits.size() - std::min(q_logits.size(), ref.ids.size()));
  for (size_t i = 0; i < q_logits.size(); ++i) {
    if ((*mark)[i]) continue;
    tail_q.push_back(std::exp(q_logits[i] - lse_q));
    s_mass += tail_q.back();
  }
  for (int32_t i : ref.ids) (*mark)[i] = 0;
  if (!tail_q.empty() && r > 0) {
    constexpr double kTiny = std::numeric_limits<double>::min();
    const double s_safe = std::max(s_mass, kTiny);
    kld += r * (std::log(r) - std::log(s_safe));
    // Bound (kld.h): tail entropy term Σ p_i log p_i ≤ r log p_k; cross term -Σ p_i log q_i is at most
    // its value at the worst vertex of {0 ≤ p_i ≤ p_k, Σ p_i = r}: p_k on the m = floor(r/p_k) smallest
    // tail q's and the remainder on the next one.
    const double p_k = std::exp(ref.logits.back() - ref.lse);
    const size_t m = std::min(tail_q.size() - 1, static_cast<size_t>(std::floor(r / p_k)));
    const double rem = std::max(0.0, r - static_cast<double>(m) * p_k);
    std::partial_sort(tail_q.begin(), tail_q.begin() + static_cast<std::ptrdiff_t>(m) + 1, tail_q.end());
    double cross = rem * -std::log(std::max(tail_q[m], kTiny));
    for (size_t j = 0; j < m; ++j) cross += p_k * -std::log(std::max(tail_q[j], kTiny));
    s.kld_bound = std::max(0.0, r * std::log(p_k) + cross - r * (std::log(r) - std::log(s_safe)));
  }
  s.kld = kld;
  s.nll = lse_q - q_logits[target];
  s.nll_ref = ref.lse - ref.target_logit;
  s.p_diff = std::exp(-s.nll) - std::exp(-s.nll_ref);
  s.same_top = !ref.ids.empty() && ref.ids[0] == ArgMax(q_logits);
  return s;
}

void EvalAccumulator::Add(const PositionStats& s) {
  ++count_;
  sum_nll_ += s.nll;
  sum_nll2_ += s.nll * s.nll;
  if (!has_ref_) return;
  sum_nll_ref_ += s.nll_ref;
  sum_nll_ref2_ += s.nll_ref * s.nll_ref;
  sum_nll_nll_ref_ += s.nll * s.nll_ref;
  sum_kld_ += s.kld;
  sum_kld2_ += s.kld * s.kld;
  sum_dp_ += s.p_diff;
  const double dp2 = s.p_diff * s.p_diff;
  sum_dp2_ += dp2;
  sum_dp4_ += dp2 * dp2;
  max_dp_ = std::max(max_dp_, std::fabs(s.p_diff));
  n_same_top_ += s.same_top ? 1 : 0;
  sum_bound_ += s.kld_bound;
  kld_values_.push_back(static_cast<float>(s.kld));
}

double Percentile(const std::vector<float>& v, double fraction) {
  if (v.empty()) return 0;
  if (fraction <= 0) return v.front();
  if (fraction >= 1) return v.back();
  double p = fraction * static_cast<double>(v.size() - 1);
  const size_t ip = static_cast<size_t>(p);
  p -= static_cast<double>(ip);
  return (1 - p) * v[ip] + p * v[std::min(ip + 1, v.size() - 1)];
}

// The formulas of llama.cpp's kl_divergence() final statistics, term for term.
EvalSummary EvalAccumulator::Summarize() const {
  EvalSummary r;
  r.count = count_;
  r.has_ref = has_ref_;
  r.nll = MeanAndUnc(sum_nll_, sum_nll2_, count_);
  r.ppl = {std::exp(r.nll.value), std::exp(r.nll.value) * r.nll.unc};
  if (!has_ref_ || count_ == 0) return r;
  r.nll_ref = MeanAndUnc(sum_nll_ref_, sum_nll_ref2_, count_);
  r.ppl_ref = {std::exp(r.nll_ref.value), std::exp(r.nll_ref.value) * r.nll_ref.unc};
  const double cov = Covariance(sum_nll_, sum_nll_ref_, sum_nll_nll_ref_, count_);
  const double denom = r.nll.unc * r.nll_ref.unc;
  r.cor = denom > 0 ? cov / denom : 0;
  r.ln_ppl_ratio.value = r.nll.value - r.nll_ref.value;
  r.ln_ppl_ratio.unc = std::sqrt(std::max(0.0, r.nll.unc * r.nll.unc + r.nll_ref.unc * r.nll_ref.unc - 2 * cov));
  r.ppl_ratio = {std::exp(r.ln_ppl_ratio.value), std::exp(r.ln_ppl_ratio.value) * r.ln_ppl_ratio.unc};
  const double ppl_cov = r.ppl.value * r.ppl_ref.value * cov;
  r.ppl_diff.value = r.ppl.value - r.ppl_ref.value;
  r.ppl_diff.unc = std::sqrt(std::max(0.0, r.ppl.unc * r.ppl.unc + r.ppl_ref.unc * r.ppl_ref.unc - 2 * ppl_cov));
  r.kld = MeanAndUnc(sum_kld_, sum_kld2_, count_);
  r.mean_dp = MeanAndUnc(sum_dp_, sum_dp2_, count_);
  const ValueUnc mse = MeanAndUnc(sum_dp2_, sum_dp4_, count_);
  r.rms_dp.value = std::sqrt(mse.value);
  r.rms_dp.unc = r.rms_dp.value > 0 ? 0.5 / r.rms_dp.value * mse.unc : 0;
  const double top = static_cast<double>(n_same_top_) / static_cast<double>(count_);
  r.same_top = {top, count_ > 1 ? std::sqrt(top * (1 - top) / static_cast<double>(count_ - 1)) : 0};
  r.dp_max_abs = max_dp_;
  r.kld_trunc_bound = sum_bound_ / static_cast<double>(count_);
  std::vector<float> sorted = kld_values_;
  std::sort(sorted.begin(), sorted.end());
  const size_t n = sorted.size();
  r.kld_median = n % 2 == 0 ? 0.5 * (sorted[n / 2] + sorted[n / 2 - 1]) : sorted[n / 2];
  r.kld_p90 = Percentile(sorted, 0.90);
  r.kld_p99 = Percentile(sorted, 0.99);
  r.kld_p999 = Percentile(sorted, 0.999);
  r.kld_max = sorted.back();
  return r;
}

}  // namespace qforge::eval
