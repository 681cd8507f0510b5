// KLD math: hand-computed value, KLD(p, p) = 0, top-k truncation identities, and llama.cpp's statistics.
#include "qforge/eval/kld.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace qforge::eval {
namespace {

std::vector<float> RandomLogits(std::mt19937& rng, int n, float scale) {
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = d(rng);
  return v;
}

TEST(Kld, HandComputedThreeTokens) {
  // p = (0.5, 0.3, 0.2), q = (0.4, 0.4, 0.2):
  // KL = 0.5 ln(0.5/0.4) + 0.3 ln(0.3/0.4) + 0.2 ln 1 = 0.111571776 - 0.086304622 = 0.025267154.
  const std::vector<double> p = {0.5, 0.3, 0.2}, q = {0.4, 0.4, 0.2};
  EXPECT_NEAR(KlDivergence(p, q), 0.0252671537, 1e-9);
  // The same through logits (log-probabilities plus an arbitrary shift per distribution).
  const std::vector<float> lp = {std::log(0.5f) + 3, std::log(0.3f) + 3, std::log(0.2f) + 3};
  const std::vector<float> lq = {std::log(0.4f) - 1, std::log(0.4f) - 1, std::log(0.2f) - 1};
  PositionStats s = ComparePosition(lp, lq, /*target=*/1);
  EXPECT_NEAR(s.kld, 0.0252671537, 1e-6);
  EXPECT_NEAR(s.nll, -std::log(0.4), 1e-6);
  EXPECT_NEAR(s.nll_ref, -std::log(0.3), 1e-6);
  EXPECT_NEAR(s.p_diff, 0.1, 1e-6);
  EXPECT_TRUE(s.same_top);  // argmax p = 0, argmax q = 0 (tie 0/1 goes to the lower id)
}

TEST(Kld, SelfDivergenceIsZeroProperty) {
  const unsigned seed = 1234;
  std::mt19937 rng(seed);
  for (int trial = 0; trial < 50; ++trial) {
    const int n = 2 + static_cast<int>(rng() % 600);
    auto l = RandomLogits(rng, n, 1.0f + trial * 0.3f);
    PositionStats s = ComparePosition(l, l, static_cast<int32_t>(rng() % n));
    EXPECT_NEAR(s.kld, 0.0, 1e-12) << "seed " << seed << " trial " << trial;
    EXPECT_TRUE(s.same_top);
    EXPECT_EQ(s.p_diff, 0.0);
    // Shifting all logits leaves the distribution (and so KLD = 0) unchanged.
    auto shifted = l;
    for (auto& x : shifted) x += 7.0f;
    EXPECT_NEAR(ComparePosition(l, shifted, 0).kld, 0.0, 1e-6) << "seed " << seed;
  }
}

TEST(Kld, NonNegativeProperty) {
  const unsigned seed = 99;
  std::mt19937 rng(seed);
  for (int trial = 0; trial < 50; ++trial) {
    auto p = RandomLogits(rng, 300, 3.0f), q = RandomLogits(rng, 300, 3.0f);
    EXPECT_GE(ComparePosition(p, q, 5).kld, 0.0) << "seed " << seed << " trial " << trial;
  }
}

TEST(Kld, TopKFullVocabularyReproducesFullValue) {
  std::mt19937 rng(7);
  std::vector<uint8_t> mark(512, 0);
  for (int trial = 0; trial < 20; ++trial) {
    auto p = RandomLogits(rng, 512, 4.0f), q = RandomLogits(rng, 512, 4.0f);
    TopKRef ref;
    MakeTopK(p, 512, 3, &ref);
    PositionStats full = ComparePosition(p, q, 3), topk = ComparePosition(ref.view(), q, 3, &mark);
    EXPECT_NEAR(full.kld, topk.kld, 1e-9);
    EXPECT_EQ(topk.kld_bound, 0.0);
    EXPECT_NEAR(full.nll_ref, topk.nll_ref, 1e-9);
    EXPECT_EQ(full.same_top, topk.same_top);
    for (uint8_t m : mark) ASSERT_EQ(m, 0);
  }
}

TEST(Kld, TopKTruncationWithinBoundProperty) {
  const unsigned seed = 2024;
  std::mt19937 rng(seed);
  std::vector<uint8_t> mark(400, 0);
  for (int trial = 0; trial < 100; ++trial) {
    auto p = RandomLogits(rng, 400, 2.0f + trial % 5), q = p;
    std::normal_distribution<float> noise(0.0f, 0.5f);
    for (auto& x : q) x += noise(rng);
    const int k = 1 + static_cast<int>(rng() % 100);
    TopKRef ref;
    MakeTopK(p, k, 0, &ref);
    const double full = ComparePosition(p, q, 0).kld;
    PositionStats t = ComparePosition(ref.view(), q, 0, &mark);
    EXPECT_LE(t.kld, full + 1e-12) << "seed " << seed << " trial " << trial << " k " << k;
    EXPECT_LE(full - t.kld, t.kld_bound + 1e-12) << "seed " << seed << " trial " << trial << " k " << k;
  }
}

TEST(Kld, TopKSelectionOrderAndTail) {
  const std::vector<float> l = {1.0f, 3.0f, 3.0f, -2.0f, 0.5f};
  TopKRef r;
  MakeTopK(l, 3, 4, &r);
  EXPECT_EQ(r.ids, (std::vector<int32_t>{1, 2, 0}));
  EXPECT_EQ(r.target_logit, 0.5f);
  const double lse = LogSumExp(l);
  EXPECT_NEAR(r.tail, std::exp(-2.0 - lse) + std::exp(0.5 - lse), 1e-12);
}

TEST(Kld, AccumulatorMatchesLlamaCppFormulas) {
  EvalAccumulator acc(true);
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> u(0.1, 3.0);
  double s = 0, s2 = 0;
  const int n = 200;
  for (int i = 0; i < n; ++i) {
    PositionStats p;
    p.nll = u(rng);
    p.nll_ref = p.nll;  // identical models: ratio 1, ΔPPL 0 with zero uncertainty
    p.kld = i;
    p.same_top = i % 4 != 0;
    s += p.nll;
    s2 += p.nll * p.nll;
    acc.Add(p);
  }
  EvalSummary r = acc.Summarize();
  const double mean = s / n, sd = std::sqrt((s2 / n - mean * mean) / (n - 1));
  EXPECT_NEAR(r.nll.value, mean, 1e-12);
  EXPECT_NEAR(r.ppl.unc, std::exp(mean) * sd, 1e-9);
  EXPECT_NEAR(r.ppl_diff.value, 0.0, 1e-12);
  EXPECT_NEAR(r.ppl_diff.unc, 0.0, 1e-6);
  EXPECT_NEAR(r.ln_ppl_ratio.unc, 0.0, 1e-6);
  EXPECT_NEAR(r.same_top.value, 0.75, 1e-12);
  EXPECT_NEAR(r.kld_median, 99.5, 1e-9);
  EXPECT_NEAR(r.kld_max, 199, 1e-9);
  EXPECT_NEAR(r.kld_p99, 0.99 * 199, 1e-3);
}

}  // namespace
}  // namespace qforge::eval
