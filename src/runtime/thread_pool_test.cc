// ThreadPool: every index of [0, n) is handed out exactly once, for both splits, any thread count and
// many back-to-back jobs (the spin-then-sleep hand-off between jobs is where a race would hide, so these
// tests also run under ThreadSanitizer: scripts/test.sh, preset "tsan").
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "qforge/runtime/thread_pool.h"

namespace qforge {
namespace {

// Runs `jobs` jobs over [0, n) and checks that each index was visited exactly once per job.
void ExpectEachIndexOnce(ThreadPool& pool, int64_t n, int64_t grain, int jobs) {
  std::vector<std::atomic<int>> visits(static_cast<size_t>(n));
  for (int j = 0; j < jobs; ++j) {
    auto fn = [&](int64_t b, int64_t e) {
      ASSERT_LE(0, b);
      ASSERT_LE(b, e);
      ASSERT_LE(e, n);
      for (int64_t i = b; i < e; ++i) visits[static_cast<size_t>(i)].fetch_add(1, std::memory_order_relaxed);
    };
    if (grain > 0) {
      pool.RunChunks(n, grain, fn);
    } else {
      pool.Run(n, fn);
    }
  }
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(visits[static_cast<size_t>(i)].load(), jobs) << "index " << i;
}

TEST(ThreadPool, StaticSplitCoversEveryIndexOnce) {
  for (int threads : {1, 2, 3, 4}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.threads(), threads);
    for (int64_t n : {0, 1, 2, 5, 64, 1000}) ExpectEachIndexOnce(pool, n, 0, 50);
  }
}

TEST(ThreadPool, DynamicChunksCoverEveryIndexOnce) {
  for (int threads : {1, 2, 4}) {
    ThreadPool pool(threads);
    for (int64_t n : {1, 7, 100, 1001})
      for (int64_t grain : {1, 3, 64, 5000}) ExpectEachIndexOnce(pool, n, grain, 20);
  }
}

// Jobs separated by pauses longer than the spin phase: workers go to sleep and must be woken each time.
TEST(ThreadPool, WakesSleepingWorkers) {
  ThreadPool pool(3);
  for (int j = 0; j < 5; ++j) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ExpectEachIndexOnce(pool, 300, j % 2 ? 16 : 0, 1);
  }
}

// Results written to disjoint slots do not depend on the thread count.
TEST(ThreadPool, SameResultsForAnyThreadCount) {
  std::vector<double> expect;
  for (int threads : {1, 2, 4}) {
    ThreadPool pool(threads);
    std::vector<double> out(4096);
    pool.RunChunks(static_cast<int64_t>(out.size()), 37, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) out[static_cast<size_t>(i)] = 1.0 / static_cast<double>(i + 1);
    });
    if (expect.empty()) expect = out;
    EXPECT_EQ(out, expect) << threads << " threads";
  }
}

}  // namespace
}  // namespace qforge
