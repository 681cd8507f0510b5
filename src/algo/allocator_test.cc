// The knapsack allocator against brute force on small random instances (a seeded loop: the same
// instances every run), plus the budget, determinism and error contracts.
#include "qforge/algo/allocator.h"

#include <gtest/gtest.h>

#include <random>

namespace qforge {
namespace {

std::vector<KnapsackItem> RandomItems(std::mt19937_64& rng, size_t n, size_t max_options, bool quantized_sizes) {
  std::vector<KnapsackItem> items(n);
  for (auto& it : items) {
    const size_t k = 1 + rng() % max_options;
    for (size_t j = 0; j < k; ++j) {
      KnapsackOption o;
      // Quantized sizes (multiples of 32, few distinct damages) produce many ties and equal sizes.
      o.bytes = quantized_sizes ? 32 * (1 + rng() % 6) : 1 + rng() % 1000;
      o.damage = quantized_sizes ? static_cast<double>(rng() % 4) : std::uniform_real_distribution<double>(0, 10)(rng);
      it.options.push_back(o);
    }
  }
  return items;
}

uint64_t Total(const std::vector<KnapsackItem>& items, bool largest) {
  uint64_t t = 0;
  for (const auto& it : items) {
    uint64_t m = largest ? 0 : UINT64_MAX;
    for (const auto& o : it.options) m = largest ? std::max(m, o.bytes) : std::min(m, o.bytes);
    t += m;
  }
  return t;
}

// max_dp_cells: the default (exact DP), 0 (plain branch-and-bound) or small (rounded-DP seed + B&B).
void CheckAgainstBruteForce(bool quantized_sizes, uint64_t max_dp_cells) {
  const bool use_dp = max_dp_cells == KnapsackOptions{}.max_dp_cells;
  std::mt19937_64 rng(quantized_sizes ? 7 : 42);
  int checked = 0, searched = 0;
  for (int trial = 0; trial < 1500; ++trial) {
    const auto items = RandomItems(rng, 1 + rng() % 7, 5, quantized_sizes);
    const uint64_t lo = Total(items, false), hi = Total(items, true);
    const uint64_t budget = lo + (hi > lo ? rng() % (hi - lo + 1) : 0);
    auto exact = SolveKnapsackBruteForce(items, budget);
    ASSERT_TRUE(exact.ok()) << exact.status().ToString();
    KnapsackOptions opt;
    opt.max_dp_cells = max_dp_cells;
    auto got = SolveKnapsack(items, budget, opt);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    if (use_dp) { ASSERT_EQ(got->method, "dp"); }
    if (max_dp_cells == 0) { ASSERT_EQ(got->method, "branch-and-bound"); }
    searched += got->method == "branch-and-bound";
    ASSERT_TRUE(got->proven_optimal);
    ASSERT_LE(got->bytes, budget) << "trial " << trial;
    ASSERT_NEAR(got->damage, exact->damage, 1e-9 * std::max(1.0, exact->damage)) << "trial " << trial;
    ASSERT_LE(got->lower_bound, got->damage + 1e-9);
    // The reported totals are those of the reported choice.
    uint64_t bytes = 0;
    double damage = 0;
    for (size_t i = 0; i < items.size(); ++i) {
      bytes += items[i].options[got->choice[i]].bytes;
      damage += items[i].options[got->choice[i]].damage;
    }
    EXPECT_EQ(bytes, got->bytes);
    EXPECT_DOUBLE_EQ(damage, got->damage);
    ++checked;
  }
  EXPECT_EQ(checked, 1500);
  if (!use_dp) { EXPECT_GT(searched, 500); }  // the small-table case really went through the seeded search
}

constexpr uint64_t kExactDp = KnapsackOptions{}.max_dp_cells;
TEST(Allocator, DpMatchesBruteForceOnRandomInstances) { CheckAgainstBruteForce(false, kExactDp); }
TEST(Allocator, DpMatchesBruteForceWithTiesAndEqualSizes) { CheckAgainstBruteForce(true, kExactDp); }
TEST(Allocator, BranchAndBoundMatchesBruteForceOnRandomInstances) { CheckAgainstBruteForce(false, 0); }
TEST(Allocator, BranchAndBoundMatchesBruteForceWithTiesAndEqualSizes) { CheckAgainstBruteForce(true, 0); }
TEST(Allocator, RoundedDpSeedThenBranchAndBoundMatchesBruteForce) { CheckAgainstBruteForce(false, 40); }

// A realistic shape: 200 tensors x 8 types with rate-distortion-like damage. The search must finish (a
// proof of optimality), stay within the budget and give identical choices on a second run.
TEST(Allocator, ProvesOptimalityOnModelSizedInstanceDeterministically) {
  std::mt19937_64 rng(3);
  std::vector<KnapsackItem> items(200);
  const double bits[] = {2.625, 3.4375, 4.5, 5.5, 6.5625, 8.5, 16, 32};
  for (auto& it : items) {
    const uint64_t numel = 4096ull * (1 + rng() % 8);
    const double sens = std::exp(std::normal_distribution<double>(0, 1)(rng));
    for (double b : bits)
      it.options.push_back({static_cast<uint64_t>(numel * b / 8), sens * numel * std::exp2(-2 * b)});
  }
  const uint64_t budget = Total(items, false) + (Total(items, true) - Total(items, false)) / 7;
  KnapsackOptions bnb;
  bnb.max_dp_cells = 0;
  auto a = SolveKnapsack(items, budget, bnb);
  auto b = SolveKnapsack(items, budget, bnb);
  ASSERT_TRUE(a.ok() && b.ok());
  auto dp = SolveKnapsack(items, budget);
  ASSERT_TRUE(dp.ok());
  EXPECT_EQ(dp->method, "dp");
  EXPECT_NEAR(dp->damage, a->damage, 1e-9 * a->damage);
  EXPECT_TRUE(a->proven_optimal) << a->nodes << " nodes";
  EXPECT_LE(a->bytes, budget);
  EXPECT_GE(a->damage, a->lower_bound - 1e-12);
  EXPECT_EQ(a->choice, b->choice);
}

TEST(Allocator, NodeLimitStillReturnsAFeasibleSolution) {
  // 40 equal items; the LP bound (7.4 upgrades) is fractional, so the root cannot be pruned and a proof
  // needs more than 3 nodes.
  std::vector<KnapsackItem> items(40, KnapsackItem{{{10, 1.0}, {15, 0.0}}});
  const uint64_t budget = 40 * 10 + 7 * 5 + 2;
  KnapsackOptions opt;
  opt.max_dp_cells = 0;
  opt.max_nodes = 3;
  auto got = SolveKnapsack(items, budget, opt);
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->proven_optimal);
  EXPECT_LE(got->bytes, budget);
  EXPECT_NEAR(got->lower_bound, 40 - 7.4, 1e-12);
  EXPECT_GE(got->damage, got->lower_bound);
  auto full = SolveKnapsack(items, budget);  // the DP handles the symmetric case branch-and-bound cannot
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(full->method, "dp");
  EXPECT_TRUE(full->proven_optimal);
  EXPECT_DOUBLE_EQ(full->damage, 33.0);
}

TEST(Allocator, RejectsImpossibleBudgetsAndBadDamage) {
  std::vector<KnapsackItem> items = {{{{10, 1.0}, {20, 0.5}}}, {{{5, 2.0}}}};
  EXPECT_FALSE(SolveKnapsack(items, 14).ok());
  auto ok = SolveKnapsack(items, 15);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->choice, (std::vector<size_t>{0, 0}));
  auto all = SolveKnapsack(items, 25);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->choice, (std::vector<size_t>{1, 0}));
  items[0].options[0].damage = -1;
  EXPECT_FALSE(SolveKnapsack(items, 100).ok());
  items[0].options.clear();
  EXPECT_FALSE(SolveKnapsack(items, 100).ok());
}

}  // namespace
}  // namespace qforge
