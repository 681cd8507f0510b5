// ParallelFor: contiguous chunks that cover [0, n) exactly once, for thread counts below, equal to and
// above n (also run under ThreadSanitizer: scripts/test.sh, preset "tsan").
#include <gtest/gtest.h>

#include <atomic>
#include <vector>

#include "qforge/core/parallel.h"

namespace qforge {
namespace {

TEST(ParallelFor, CoversEveryIndexOnceForAnyThreadCount) {
  for (int threads : {0, 1, 2, 3, 8}) {
    for (int64_t n : {0, 1, 2, 3, 10, 1000}) {
      std::vector<std::atomic<int>> visits(static_cast<size_t>(n));
      std::atomic<int> calls{0};
      ParallelFor(n, threads, [&](int64_t b, int64_t e) {
        calls.fetch_add(1);
        ASSERT_LT(b, e);
        for (int64_t i = b; i < e; ++i) visits[static_cast<size_t>(i)].fetch_add(1);
      });
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(visits[static_cast<size_t>(i)].load(), 1) << n << " " << threads;
      EXPECT_LE(calls.load(), std::max(1, threads)) << "more chunks than threads";
      if (n == 0) { EXPECT_EQ(calls.load(), 0); }
    }
  }
}

TEST(ParallelFor, DisjointWritesGiveTheSameResult) {
  std::vector<float> expect;
  for (int threads : {1, 2, 5}) {
    std::vector<float> out(10007);
    ParallelFor(static_cast<int64_t>(out.size()), threads, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) out[static_cast<size_t>(i)] = static_cast<float>(i) * 0.5f;
    });
    if (expect.empty()) expect = out;
    EXPECT_EQ(out, expect);
  }
}

}  // namespace
}  // namespace qforge
