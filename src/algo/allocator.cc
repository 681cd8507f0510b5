// Branch-and-bound for the multiple-choice knapsack (see allocator.h for what is guaranteed).
#include "qforge/algo/allocator.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include <fmt/format.h>

namespace qforge {
namespace {

// One candidate after dominance filtering, with its index in the caller's option list.
struct Point {
  uint64_t bytes;
  double damage;
  size_t index;
};

// A step along an item's lower convex hull: from hull point k to k + 1.
struct Step {
  size_t item;
  uint64_t dbytes;
  double ddamage;     // damage removed (> 0)
  double efficiency;  // ddamage / dbytes
};

class Solver {
 public:
  Solver(const std::vector<KnapsackItem>& items, uint64_t budget, uint64_t max_nodes)
      : budget_(budget), max_nodes_(max_nodes) {
    const size_t n = items.size();
    kept_.resize(n);
    for (size_t i = 0; i < n; ++i) kept_[i] = Undominated(items[i].options);
    BuildSteps();
    // Branch on the items whose choice matters most first: the widest damage range. Ties: item index.
    order_.resize(n);
    std::iota(order_.begin(), order_.end(), size_t{0});
    std::stable_sort(order_.begin(), order_.end(), [&](size_t a, size_t b) { return Range(a) > Range(b); });
    depth_of_.resize(n);
    for (size_t d = 0; d < n; ++d) depth_of_[order_[d]] = d;
    min_bytes_suffix_.assign(n + 1, 0);
    min_damage_suffix_.assign(n + 1, 0.0);
    for (size_t d = n; d-- > 0;) {
      min_bytes_suffix_[d] = min_bytes_suffix_[d + 1] + kept_[order_[d]].front().bytes;
      min_damage_suffix_[d] = min_damage_suffix_[d + 1] + kept_[order_[d]].front().damage;
    }
    current_.assign(n, 0);
  }

  uint64_t min_bytes() const { return min_bytes_suffix_[0]; }

  // The dynamic program over totals in units of g (see allocator.h); false when its table would exceed
  // max_cells or an item keeps more than 255 points. rounded: when the exact table is too large, use a
  // coarser unit with every size rounded up instead (feasible, not proven optimal); kept_choice receives
  // the chosen kept-point index per item.
  bool RunDp(uint64_t max_cells, bool rounded, KnapsackSolution* out, std::vector<size_t>* kept_choice) const {
    const size_t n = kept_.size();
    if (n == 0 || max_cells / n < 2) return false;
    uint64_t g = 0;
    for (const auto& pts : kept_)
      for (const Point& p : pts) g = std::gcd(g, p.bytes);
    if (g == 0) g = 1;
    bool exact = true;
    if (budget_ / g >= max_cells / n) {
      if (!rounded) return false;
      exact = false;
      g = budget_ / (max_cells / n - 1) + 1;  // budget_/g < max_cells/n
    }
    const auto units = [&](uint64_t bytes) { return exact ? bytes / g : (bytes + g - 1) / g; };
    const uint64_t cap = budget_ / g;
    for (const auto& pts : kept_)
      if (pts.size() > 255) return false;
    const size_t width = static_cast<size_t>(cap) + 1;
    const double inf = std::numeric_limits<double>::infinity();
    std::vector<double> dp(width, inf), next(width);
    std::vector<uint8_t> pick(n * width, 0);
    dp[0] = 0;
    for (size_t i = 0; i < n; ++i) {
      std::fill(next.begin(), next.end(), inf);
      uint8_t* row = &pick[i * width];
      for (size_t k = 0; k < kept_[i].size(); ++k) {
        const uint64_t w = units(kept_[i][k].bytes);
        const double d = kept_[i][k].damage;
        for (uint64_t c = w; c <= cap; ++c) {
          const double v = dp[c - w] + d;
          if (v < next[c]) {  // strict: the earlier (cheaper) point wins ties
            next[c] = v;
            row[c] = static_cast<uint8_t>(k);
          }
        }
      }
      dp.swap(next);
    }
    uint64_t best_c = 0;
    for (uint64_t c = 1; c <= cap; ++c)
      if (dp[c] < dp[best_c]) best_c = c;
    if (!std::isfinite(dp[best_c])) return false;  // exact: cannot happen; rounded: rounding left no room
    out->choice.assign(n, 0);
    kept_choice->assign(n, 0);
    out->bytes = 0;
    out->damage = 0;
    for (size_t i = n; i-- > 0;) {
      (*kept_choice)[i] = pick[i * width + best_c];
      const Point& p = kept_[i][(*kept_choice)[i]];
      out->choice[i] = p.index;
      out->bytes += p.bytes;
      out->damage += p.damage;
      best_c -= units(p.bytes);
    }
    out->proven_optimal = exact;
    out->lower_bound = Bound(0, budget_, nullptr);
    out->nodes = 0;
    out->method = exact ? "dp" : "rounded dp";
    return true;
  }

  // Branch-and-bound, starting from the better of the hull greedy and `seed` (kept-point indices).
  KnapsackSolution Run(const std::vector<size_t>* seed) {
    KnapsackSolution out;
    const size_t n = kept_.size();
    out.lower_bound = Bound(0, budget_, nullptr);
    SeedGreedy();
    if (seed != nullptr && seed->size() == n) {
      double d = 0;
      for (size_t i = 0; i < n; ++i) d += kept_[i][(*seed)[i]].damage;
      if (Better(d)) {
        best_ = *seed;
        best_damage_ = d;
      }
    }
    Search(0, 0, 0.0);
    out.proven_optimal = nodes_ < max_nodes_;
    out.nodes = nodes_;
    out.method = "branch-and-bound";
    out.choice.resize(n);
    for (size_t i = 0; i < n; ++i) {
      const Point& p = kept_[i][best_[i]];
      out.choice[i] = p.index;
      out.bytes += p.bytes;
      out.damage += p.damage;
    }
    return out;
  }

 private:
  // Sorted by bytes; an option survives only if it has strictly less damage than every cheaper one
  // (equal bytes: the lower damage, then the lower index, comes first and shadows the rest).
  static std::vector<Point> Undominated(const std::vector<KnapsackOption>& options) {
    std::vector<Point> all;
    for (size_t j = 0; j < options.size(); ++j) all.push_back({options[j].bytes, options[j].damage, j});
    std::sort(all.begin(), all.end(), [](const Point& a, const Point& b) {
      if (a.bytes != b.bytes) return a.bytes < b.bytes;
      if (a.damage != b.damage) return a.damage < b.damage;
      return a.index < b.index;
    });
    std::vector<Point> kept;
    for (const Point& p : all)
      if (kept.empty() || p.damage < kept.back().damage) kept.push_back(p);
    return kept;
  }

  double Range(size_t i) const { return kept_[i].front().damage - kept_[i].back().damage; }

  // Lower convex hull of each item's kept points; all hull steps in one list, most damage removed per
  // byte first. Along one item the efficiencies decrease, so the global order keeps each item's steps in
  // sequence (ties across items: item index, then position along the hull).
  void BuildSteps() {
    for (size_t i = 0; i < kept_.size(); ++i) {
      const auto& pts = kept_[i];
      std::vector<size_t> hull;
      for (size_t k = 0; k < pts.size(); ++k) {
        while (hull.size() >= 2) {
          const Point& a = pts[hull[hull.size() - 2]];
          const Point& b = pts[hull.back()];
          const Point& c = pts[k];
          // b is above the segment a-c (or on it): drop it. Slopes compared by cross-multiplication.
          const double lhs = (a.damage - b.damage) * static_cast<double>(c.bytes - a.bytes);
          const double rhs = (a.damage - c.damage) * static_cast<double>(b.bytes - a.bytes);
          if (lhs <= rhs) hull.pop_back();
          else break;
        }
        hull.push_back(k);
      }
      for (size_t h = 0; h + 1 < hull.size(); ++h) {
        const Point& a = pts[hull[h]];
        const Point& b = pts[hull[h + 1]];
        const uint64_t db = b.bytes - a.bytes;
        const double dd = a.damage - b.damage;
        steps_.push_back({i, db, dd, dd / static_cast<double>(db)});
      }
    }
    std::stable_sort(steps_.begin(), steps_.end(),
                     [](const Step& a, const Step& b) { return a.efficiency > b.efficiency; });
  }

  // LP bound of the items at depth >= d with `room` bytes: each starts at its cheapest point and hull
  // steps are taken, most efficient first, the one that does not fit fractionally (Dantzig). +inf when
  // even the cheapest points do not fit. hull_bytes (optional): bytes the LP gives the item at depth d.
  double Bound(size_t d, uint64_t room, double* hull_bytes) const {
    if (min_bytes_suffix_[d] > room) return std::numeric_limits<double>::infinity();
    uint64_t left = room - min_bytes_suffix_[d];
    double damage = min_damage_suffix_[d];
    const size_t next_item = d < order_.size() ? order_[d] : SIZE_MAX;
    if (hull_bytes && next_item != SIZE_MAX) *hull_bytes = static_cast<double>(kept_[next_item].front().bytes);
    for (const Step& s : steps_) {
      if (depth_of_[s.item] < d) continue;
      if (s.dbytes <= left) {
        left -= s.dbytes;
        damage -= s.ddamage;
        if (hull_bytes && s.item == next_item) *hull_bytes += static_cast<double>(s.dbytes);
      } else {
        const double frac = static_cast<double>(left) / static_cast<double>(s.dbytes);
        damage -= s.ddamage * frac;
        if (hull_bytes && s.item == next_item) *hull_bytes += static_cast<double>(s.dbytes) * frac;
        break;
      }
    }
    return damage;
  }

  // The integral part of the root LP, then any further hull steps that still fit: a feasible start.
  void SeedGreedy() {
    const size_t n = kept_.size();
    std::vector<size_t> hull_pos(n, 0);
    // Map hull steps back to kept-point indices: the step k of item i goes to the point whose bytes are
    // the running sum; recover it by bytes.
    std::vector<uint64_t> bytes(n);
    for (size_t i = 0; i < n; ++i) bytes[i] = kept_[i].front().bytes;
    uint64_t used = min_bytes_suffix_[0];
    std::vector<bool> stopped(n, false);
    for (const Step& s : steps_) {
      if (stopped[s.item]) continue;
      if (used + s.dbytes <= budget_) {
        used += s.dbytes;
        bytes[s.item] += s.dbytes;
      } else {
        stopped[s.item] = true;  // later steps of this item are only reachable through this one
      }
    }
    best_.assign(n, 0);
    best_damage_ = 0;
    for (size_t i = 0; i < n; ++i) {
      const auto& pts = kept_[i];
      size_t k = 0;
      while (pts[k].bytes != bytes[i]) ++k;  // bytes[i] is a hull point's size by construction
      best_[i] = k;
      best_damage_ += pts[k].damage;
    }
  }

  bool Better(double damage) const {
    return damage < best_damage_ - 1e-9 * std::max(std::fabs(best_damage_), 1e-300);
  }

  void Search(size_t d, uint64_t used, double damage) {
    if (nodes_ >= max_nodes_) return;
    ++nodes_;
    const size_t n = order_.size();
    if (d == n) {
      if (Better(damage)) {
        best_damage_ = damage;
        best_ = current_;
      }
      return;
    }
    double lp_bytes = 0;
    const double bound = damage + Bound(d, budget_ - used, &lp_bytes);
    if (!Better(bound)) return;  // also covers +inf (nothing fits)
    const size_t item = order_[d];
    const auto& pts = kept_[item];
    // Children nearest to the LP's choice for this item first (ties: fewer bytes), a fixed order.
    std::vector<size_t> kids(pts.size());
    std::iota(kids.begin(), kids.end(), size_t{0});
    std::stable_sort(kids.begin(), kids.end(), [&](size_t a, size_t b) {
      return std::fabs(static_cast<double>(pts[a].bytes) - lp_bytes) <
             std::fabs(static_cast<double>(pts[b].bytes) - lp_bytes);
    });
    for (size_t k : kids) {
      if (used + pts[k].bytes + min_bytes_suffix_[d + 1] > budget_) continue;
      current_[item] = k;
      Search(d + 1, used + pts[k].bytes, damage + pts[k].damage);
    }
  }

  uint64_t budget_;
  uint64_t max_nodes_;
  uint64_t nodes_ = 0;
  std::vector<std::vector<Point>> kept_;
  std::vector<Step> steps_;
  std::vector<size_t> order_, depth_of_;
  std::vector<uint64_t> min_bytes_suffix_;
  std::vector<double> min_damage_suffix_;
  std::vector<size_t> current_, best_;
  double best_damage_ = 0;
};

Status CheckItems(const std::vector<KnapsackItem>& items) {
  for (size_t i = 0; i < items.size(); ++i) {
    if (items[i].options.empty()) return Status::Error(fmt::format("knapsack item {} has no options", i));
    for (const auto& o : items[i].options)
      if (!(o.damage >= 0) || !std::isfinite(o.damage))
        return Status::Error(fmt::format("knapsack item {} has a damage of {} (must be finite and >= 0)", i, o.damage));
  }
  return Status::Ok();
}

Status NothingFits(uint64_t min_bytes, uint64_t budget) {
  return Status::Error(fmt::format("budget of {} bytes is below the smallest possible total of {} bytes", budget,
                                   min_bytes));
}

}  // namespace

StatusOr<KnapsackSolution> SolveKnapsack(const std::vector<KnapsackItem>& items, uint64_t budget,
                                         const KnapsackOptions& options) {
  QF_RETURN_IF_ERROR(CheckItems(items));
  Solver solver(items, budget, options.max_nodes);
  if (solver.min_bytes() > budget) return NothingFits(solver.min_bytes(), budget);
  KnapsackSolution dp;
  std::vector<size_t> kept_choice;
  if (solver.RunDp(options.max_dp_cells, /*rounded=*/false, &dp, &kept_choice)) return dp;
  // Too large for the exact table: a rounded-up DP gives a strong feasible start for branch-and-bound.
  const bool have_seed = solver.RunDp(options.max_dp_cells, /*rounded=*/true, &dp, &kept_choice);
  return solver.Run(have_seed ? &kept_choice : nullptr);
}

StatusOr<KnapsackSolution> SolveKnapsackBruteForce(const std::vector<KnapsackItem>& items, uint64_t budget) {
  QF_RETURN_IF_ERROR(CheckItems(items));
  const size_t n = items.size();
  std::vector<size_t> idx(n, 0);
  KnapsackSolution best;
  bool found = false;
  uint64_t min_bytes = 0;
  for (const auto& it : items) {
    uint64_t m = UINT64_MAX;
    for (const auto& o : it.options) m = std::min(m, o.bytes);
    min_bytes += m;
  }
  while (true) {
    uint64_t bytes = 0;
    double damage = 0;
    for (size_t i = 0; i < n; ++i) {
      bytes += items[i].options[idx[i]].bytes;
      damage += items[i].options[idx[i]].damage;
    }
    if (bytes <= budget && (!found || damage < best.damage)) {
      found = true;
      best.choice = idx;
      best.bytes = bytes;
      best.damage = damage;
    }
    size_t i = n;
    while (i > 0 && ++idx[i - 1] == items[i - 1].options.size()) idx[--i] = 0;
    if (i == 0) break;
  }
  if (!found) return NothingFits(min_bytes, budget);
  best.proven_optimal = true;
  best.lower_bound = best.damage;
  best.method = "brute force";
  return best;
}

}  // namespace qforge
