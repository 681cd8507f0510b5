// A minimal parallel-for over [0, n) in contiguous chunks on std::threads. Results must not depend on
// the thread count: callers write disjoint outputs per index (determinism principle in DESIGN.md).
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

namespace qforge {

inline void ParallelFor(int64_t n, int threads, const std::function<void(int64_t begin, int64_t end)>& fn) {
  threads = std::max(1, std::min<int>(threads, static_cast<int>(std::min<int64_t>(n, 1 << 16))));
  if (threads <= 1 || n < 2) {
    if (n > 0) fn(0, n);
    return;
  }
  std::vector<std::thread> pool;
  const int64_t chunk = (n + threads - 1) / threads;
  for (int t = 0; t < threads; ++t) {
    const int64_t b = t * chunk, e = std::min(n, b + chunk);
    if (b >= e) break;
    pool.emplace_back(fn, b, e);
  }
  for (auto& th : pool) th.join();
}

inline int DefaultThreads() {
  unsigned hc = std::thread::hardware_concurrency();
  return hc == 0 ? 1 : static_cast<int>(hc);
}

}  // namespace qforge
