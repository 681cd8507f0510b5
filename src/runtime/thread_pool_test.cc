// ThreadPool: every index of [0, n) is handed out exactly once, for all three splits, any thread count and
// many back-to-back jobs (the spin-then-sleep hand-off between jobs is where a race would hide, so these
// tests also run under ThreadSanitizer: scripts/test.sh, preset "tsan").
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "qforge/runtime/thread_pool.h"

namespace qforge {
namespace {

enum class Split { kStatic, kFixed, kGuided };

// Runs `jobs` jobs over [0, n) and checks that each index was visited exactly once per job.
void ExpectEachIndexOnce(ThreadPool& pool, int64_t n, int64_t grain, int jobs, Split split) {
  std::vector<std::atomic<int>> visits(static_cast<size_t>(n));
  for (int j = 0; j < jobs; ++j) {
    auto fn = [&](int64_t b, int64_t e) {
      ASSERT_LE(0, b);
      ASSERT_LE(b, e);
      ASSERT_LE(e, n);
      for (int64_t i = b; i < e; ++i) visits[static_cast<size_t>(i)].fetch_add(1, std::memory_order_relaxed);
    };
    switch (split) {
      case Split::kStatic: pool.Run(n, fn); break;
      case Split::kFixed: pool.RunChunks(n, grain, fn); break;
      case Split::kGuided: pool.RunGuided(n, grain, fn); break;
    }
  }
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(visits[static_cast<size_t>(i)].load(), jobs) << "index " << i;
}

TEST(ThreadPool, StaticSplitCoversEveryIndexOnce) {
  for (int threads : {1, 2, 3, 4}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.threads(), threads);
    for (int64_t n : {0, 1, 2, 5, 64, 1000}) ExpectEachIndexOnce(pool, n, 0, 50, Split::kStatic);
  }
}

TEST(ThreadPool, DynamicChunksCoverEveryIndexOnce) {
  for (int threads : {1, 2, 4}) {
    ThreadPool pool(threads);
    for (int64_t n : {1, 7, 100, 1001})
      for (int64_t grain : {1, 3, 64, 5000}) ExpectEachIndexOnce(pool, n, grain, 20, Split::kFixed);
  }
}

TEST(ThreadPool, GuidedChunksCoverEveryIndexOnce) {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (int64_t n : {1, 7, 100, 1001})
      for (int64_t grain : {1, 3, 64, 5000}) ExpectEachIndexOnce(pool, n, grain, 20, Split::kGuided);
  }
}

// Guided chunks: multiples of the grain (but the last), the first a quarter of the work with 2 threads, and
// never growing in the order they were claimed (each is a share of what was left).
TEST(ThreadPool, GuidedChunksShrinkInGrainMultiples) {
  ThreadPool pool(2);
  std::mutex mu;
  std::vector<std::pair<int64_t, int64_t>> chunks;
  pool.RunGuided(1000, 8, [&](int64_t b, int64_t e) {
    std::lock_guard<std::mutex> lock(mu);
    chunks.emplace_back(b, e);
  });
  std::sort(chunks.begin(), chunks.end());
  ASSERT_FALSE(chunks.empty());
  EXPECT_EQ(chunks.front(), std::make_pair(int64_t{0}, int64_t{256}));  // ceil(1000 / 4) rounded up to 8
  for (size_t i = 0; i < chunks.size(); ++i) {
    const int64_t len = chunks[i].second - chunks[i].first;
    if (chunks[i].second != 1000) { EXPECT_EQ(len % 8, 0) << "chunk " << i; }
    if (i > 0) {
      EXPECT_EQ(chunks[i].first, chunks[i - 1].second);
      EXPECT_LE(len, chunks[i - 1].second - chunks[i - 1].first);
    }
  }
  EXPECT_EQ(chunks.back().second, 1000);
}

// Jobs separated by pauses longer than the spin phase: workers go to sleep and must be woken each time.
TEST(ThreadPool, WakesSleepingWorkers) {
  ThreadPool pool(3);
  for (int j = 0; j < 5; ++j) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ExpectEachIndexOnce(pool, 300, 16, 1, static_cast<Split>(j % 3));
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
