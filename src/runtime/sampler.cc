// Sampling pipeline in llama.cpp's order: penalties -> top-k -> top-p -> min-p -> temperature -> draw.
#include "qforge/runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <unordered_set>

namespace qforge {

int32_t Argmax(std::span<const float> logits) {
  return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

int32_t Sampler::Sample(std::span<const float> logits, std::span<const int32_t> history) {
  cand_.clear();
  cand_.reserve(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) cand_.emplace_back(logits[i], static_cast<int32_t>(i));
  if (p_.repeat_penalty != 1.0f && p_.repeat_last_n != 0) {
    const size_t n = p_.repeat_last_n < 0 ? history.size() : std::min(history.size(), static_cast<size_t>(p_.repeat_last_n));
    std::unordered_set<int32_t> recent(history.end() - n, history.end());
    for (auto& [logit, id] : cand_) {
      if (recent.count(id)) logit = logit > 0 ? logit / p_.repeat_penalty : logit * p_.repeat_penalty;
    }
  }
  auto by_logit = [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); };
  if (p_.temperature <= 0) return std::min_element(cand_.begin(), cand_.end(), by_logit)->second;

  size_t keep = cand_.size();
  if (p_.top_k > 0) keep = std::min(keep, static_cast<size_t>(p_.top_k));
  std::partial_sort(cand_.begin(), cand_.begin() + keep, cand_.end(), by_logit);
  cand_.resize(keep);
  // Probabilities at temperature 1 for top-p / min-p, as llama.cpp's samplers see them.
  std::vector<double> p(keep);
  double sum = 0;
  for (size_t i = 0; i < keep; ++i) sum += (p[i] = std::exp(static_cast<double>(cand_[i].first - cand_[0].first)));
  if (p_.top_p < 1.0f) {
    double cum = 0;
    for (size_t i = 0; i < keep; ++i) {
      cum += p[i] / sum;
      if (cum >= p_.top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  if (p_.min_p > 0) {
    size_t i = 1;
    while (i < keep && p[i] >= p_.min_p * p[0]) ++i;
    keep = i;
  }
  std::vector<double> w(keep);
  for (size_t i = 0; i < keep; ++i) w[i] = std::exp(static_cast<double>(cand_[i].first - cand_[0].first) / p_.temperature);
  std::discrete_distribution<size_t> pick(w.begin(), w.end());
  return cand_[pick(rng_)].second;
}

}  // namespace qforge
