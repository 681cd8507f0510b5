// ThreadPool: every index of [0, n) is handed out exactly once, for all three splits (Run, RunChunks,
// RunRanges), any thread count and many back-to-back jobs (the spin-then-sleep hand-off between jobs is where
// a race would hide, so these tests also run under ThreadSanitizer: scripts/test.sh, preset "tsan").
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

enum class Split { kStatic, kFixed, kRanges };

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
      case Split::kRanges: pool.RunRanges(n, grain, fn); break;
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

TEST(ThreadPool, RangesCoverEveryIndexOnce) {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (int64_t n : {1, 7, 100, 1001})
      for (int64_t grain : {1, 3, 64, 5000}) ExpectEachIndexOnce(pool, n, grain, 20, Split::kRanges);
  }
}

// The worker runs its own range [496, 1000) (62 of the 125 grains of 8 are the caller's) in order: pieces of
// 8 while 16 or more are left, then single elements. The caller is held up in its first piece until the worker
// has run out of its own range, so the worker must then take the caller's leftovers, single elements from the
// back, going down.
TEST(ThreadPool, RangesRunOwnPiecesInOrderThenTakeLeftoversFromTheBack) {
  ThreadPool pool(2);
  std::mutex mu;
  std::vector<std::pair<std::thread::id, std::pair<int64_t, int64_t>>> log;
  std::atomic<bool> worker_stole{false};
  const std::thread::id caller = std::this_thread::get_id();
  pool.RunRanges(1000, 8, [&](int64_t b, int64_t e) {
    {
      std::lock_guard<std::mutex> lock(mu);
      log.push_back({std::this_thread::get_id(), {b, e}});
    }
    if (std::this_thread::get_id() != caller && b < 496) worker_stole = true;
    if (std::this_thread::get_id() == caller && b == 0) {
      // Wait (bounded) for the worker to come over into the caller's range.
      for (int i = 0; i < 2000 && !worker_stole; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  std::vector<std::pair<int64_t, int64_t>> worker_pieces;
  for (const auto& [id, piece] : log) {
    if (id != caller) worker_pieces.push_back(piece);
  }
  ASSERT_TRUE(worker_stole.load()) << "the worker never took the held-up caller's leftovers";
  int64_t at = 496;
  size_t i = 0;
  for (; at < 1000; ++i) {
    ASSERT_LT(i, worker_pieces.size());
    EXPECT_EQ(worker_pieces[i].first, at) << "own piece " << i;
    EXPECT_EQ(worker_pieces[i].second - at, 1000 - at >= 16 ? 8 : 1) << "own piece " << i;
    at = worker_pieces[i].second;
  }
  ASSERT_LT(i, worker_pieces.size());
  for (int64_t want = 495; i < worker_pieces.size(); ++i, --want) {
    EXPECT_EQ(worker_pieces[i], std::make_pair(want, want + 1)) << "stolen piece " << i;
  }
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
