// Choosing the next token from logits: greedy, or temperature with top-k, top-p (nucleus), min-p and a
// repetition penalty, from a seeded generator (same seed and logits -> same tokens).
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace qforge {

struct SamplerParams {
  float temperature = 0.8f;  // <= 0: greedy (argmax)
  int top_k = 40;            // <= 0: off
  float top_p = 0.95f;       // >= 1: off
  float min_p = 0.05f;       // <= 0: off (keep tokens with p >= min_p * p_max)
  float repeat_penalty = 1.0f;  // 1: off; > 1 divides positive logits of recent tokens (llama.cpp's rule)
  int repeat_last_n = 64;
  uint64_t seed = 0;
};

class Sampler {
 public:
  explicit Sampler(const SamplerParams& p) : p_(p), rng_(p.seed) {}
  // history: tokens so far (for the repetition penalty). logits are not modified.
  int32_t Sample(std::span<const float> logits, std::span<const int32_t> history);

 private:
  SamplerParams p_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, int32_t>> cand_;
};

int32_t Argmax(std::span<const float> logits);

}  // namespace qforge
