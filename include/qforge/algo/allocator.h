// Choosing one type per tensor under a size budget: a multiple-choice knapsack. Each tensor ("item")
// has candidates (bytes, predicted damage); pick exactly one per item so that the total bytes stay within
// the budget and the total damage is smallest.
//
// Exactness. Two exact methods. When the table is small enough (items x budget/g cells, g the greatest
// common divisor of all option sizes: 32 for GGUF tensors padded to the alignment), a dynamic program
// over total bytes in units of g: every total is a multiple of g, so nothing is rounded and the result is
// optimal. Otherwise the same DP with a coarser unit and every size rounded up (feasible, near-optimal) seeds
// a depth-first branch-and-bound whose bound is the LP relaxation of the remaining
// items (the greedy walk along each item's lower convex hull, cut fractionally at the budget: Dantzig's
// bound for the multiple-choice knapsack). A node is pruned only when that bound cannot beat the best
// solution found, so when the search finishes (`proven_optimal`) the answer is optimal for the predicted
// model, exactly, in integer bytes (no rounding of sizes). The search is seeded with the Lagrangian
// (convex-hull) solution, so it starts with a good incumbent. If `max_nodes` is reached first, the best
// solution so far (never worse than the rounded DP's) is returned with proven_optimal = false and `lower_bound` (the root LP bound) states
// how far from optimal it can be at most. (Branch-and-bound alone can need exponentially many nodes on
// symmetric instances - many equal tensors and a fractional LP - which is why the DP goes first.)
//
// Branch-and-bound's "optimal" is up to a relative 1e-9 of the total damage (a node whose bound is within that of the best
// solution is pruned), which is far below the accuracy of any damage prediction.
//
// Determinism: the search order depends only on the inputs and only a strictly better damage replaces
// the incumbent, so equal inputs give equal choices (whatever the machine or thread count: the solver is
// single-threaded).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "qforge/core/status.h"

namespace qforge {

struct KnapsackOption {
  uint64_t bytes = 0;
  double damage = 0;  // >= 0, finite
};

struct KnapsackItem {
  std::vector<KnapsackOption> options;  // at least one
};

struct KnapsackOptions {
  uint64_t max_dp_cells = 64'000'000;  // items x (budget/g + 1) one-byte cells; 0 = always branch-and-bound
  uint64_t max_nodes = 2'000'000;      // branch-and-bound nodes before giving up on a proof
};

struct KnapsackSolution {
  std::vector<size_t> choice;  // index into each item's options
  uint64_t bytes = 0;
  double damage = 0;
  bool proven_optimal = false;
  double lower_bound = 0;  // LP bound at the root: no solution has less damage
  uint64_t nodes = 0;         // branch-and-bound nodes (0 when the dynamic program ran)
  std::string method;         // "dp" or "branch-and-bound"
};

// Errors: an item without options, a negative or non-finite damage, or a budget below the sum of every
// item's smallest option (nothing fits).
StatusOr<KnapsackSolution> SolveKnapsack(const std::vector<KnapsackItem>& items, uint64_t budget,
                                         const KnapsackOptions& options = {});

// Every combination (tests only; the product of option counts must be small): the least damage within the
// budget, the first such combination in lexicographic order of option indices.
StatusOr<KnapsackSolution> SolveKnapsackBruteForce(const std::vector<KnapsackItem>& items, uint64_t budget);

}  // namespace qforge
