// Spin, then sleep: between the many short jobs of one token (a job per matrix product, microseconds
// apart) workers spin on the job word, which costs far less than a condition-variable wake-up per job;
// a worker that saw no job for a while goes to sleep on the condition variable, so idle pools (and pools
// with more threads than free cores, where spinning is what makes ggml slow down badly) do not burn CPU.
//
// Chunks are claimed, never assigned: whoever is in the job takes the next chunk from one atomic counter, so
// the caller alone finishes a job whose workers are descheduled by other load (measured before this: a
// decode token waited for every worker to check in at each of its ~111 jobs, even when the caller had
// already done all the work).
#include "qforge/runtime/thread_pool.h"

#include <algorithm>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace qforge {
namespace {

// About 0.3 ms of spinning (16384 pauses measured at ~19 ns each on the Zen host here): several times the
// longest serial gap between two jobs of one decode token (tens of microseconds), far shorter than anything
// a user would notice as a busy idle thread.
constexpr int kSpinIterations = 1 << 14;

inline void CpuRelax() {
#if defined(__x86_64__)
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}

}  // namespace

ThreadPool::ThreadPool(int threads) : ranges_(static_cast<size_t>(std::max(1, threads))) {
  for (int i = 1; i < std::max(1, threads); ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true, std::memory_order_relaxed);
    // A new sequence number, already closed: wakes every worker, none joins.
    const uint32_t seq = Sequence(state_.load(std::memory_order_relaxed)) + 1;
    state_.store(static_cast<uint64_t>(seq) << 32 | kClosed, std::memory_order_release);
  }
  start_cv_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadPool::Run(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  if (workers_.empty() || n < 2) {
    if (n > 0) fn(0, n);
    return;
  }
  const int64_t chunk = (n + threads() - 1) / threads();
  Dispatch(n, chunk, Split::kFixed, fn);
}

void ThreadPool::RunChunks(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  grain = std::max<int64_t>(1, grain);
  if (workers_.empty() || n <= grain) {
    for (int64_t b = 0; b < n; b += grain) fn(b, std::min(n, b + grain));
    return;
  }
  Dispatch(n, grain, Split::kFixed, fn);
}

void ThreadPool::RunRanges(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  grain = std::max<int64_t>(1, grain);
  if (workers_.empty() || n <= grain) {
    if (n > 0) fn(0, n);
    return;
  }
  if (n >= (int64_t{1} << 31)) {  // the packed range sides are 32-bit: fall back to plain chunks
    Dispatch(n, grain, Split::kFixed, fn);
    return;
  }
  const int64_t t = threads(), pieces = (n + grain - 1) / grain;
  for (int64_t i = 0; i < t; ++i) {  // whole pieces per range, so that each owner's pieces stay grain-aligned
    const auto front = static_cast<uint64_t>(std::min(n, pieces * i / t * grain));
    const auto back = static_cast<uint64_t>(std::min(n, pieces * (i + 1) / t * grain));
    ranges_[static_cast<size_t>(i)].v.store(front | back << 32, std::memory_order_relaxed);
  }
  Dispatch(n, grain, Split::kRanges, fn);
}

void ThreadPool::Dispatch(int64_t n, int64_t grain, Split split, const std::function<void(int64_t, int64_t)>& fn) {
  job_ = &fn;
  n_ = n;
  grain_ = grain;
  split_ = split;
  next_.store(0, std::memory_order_relaxed);
  joins_.store(1, std::memory_order_relaxed);  // the caller is thread 0
  bool wake;
  {
    // The sequence number changes under the lock so that a worker going to sleep cannot miss it.
    std::lock_guard<std::mutex> lock(mu_);
    const uint32_t seq = Sequence(state_.load(std::memory_order_relaxed)) + 1;
    state_.store(static_cast<uint64_t>(seq) << 32, std::memory_order_release);
    wake = sleepers_ > 0;
  }
  if (wake) start_cv_.notify_all();
  Work(0);
  // Every chunk is taken: close the job to latecomers, then wait for the workers still inside.
  state_.fetch_or(kClosed, std::memory_order_acq_rel);
  for (int spins = 0; (state_.load(std::memory_order_acquire) & kInsideMask) != 0; ++spins) {
    if (spins < kSpinIterations) {
      CpuRelax();
    } else {
      std::this_thread::yield();  // a worker may be descheduled mid-chunk: give it the core
    }
  }
  job_ = nullptr;
}

void ThreadPool::Work(int64_t index) {
  if (split_ == Split::kRanges) {
    WorkRanges(index);
    return;
  }
  for (;;) {
    const int64_t b = next_.fetch_add(grain_, std::memory_order_relaxed);
    if (b >= n_) return;
    (*job_)(b, std::min(n_, b + grain_));
  }
}

void ThreadPool::WorkRanges(int64_t index) {
  // Its own range, from the front, `grain` at a time until the last two pieces' worth, then one element at a
  // time: whoever comes to help at the end waits at most one element for the owner, not one piece (a piece of
  // decode's down product is ~200 KB of weights, ~13 us at 2 threads here). A thread numbered past the ranges
  // (joining a job that had already started) has none.
  if (index < static_cast<int64_t>(ranges_.size())) {
    std::atomic<uint64_t>& own = ranges_[static_cast<size_t>(index)].v;
    uint64_t v = own.load(std::memory_order_relaxed);
    for (;;) {
      const uint64_t front = v & 0xffffffffu, back = v >> 32;
      if (front >= back) break;
      const uint64_t take = back - front >= 2 * static_cast<uint64_t>(grain_) ? static_cast<uint64_t>(grain_) : 1;
      // On failure v holds the current value (another thread took an element from the back).
      if (own.compare_exchange_weak(v, v + take, std::memory_order_relaxed)) {
        (*job_)(static_cast<int64_t>(front), static_cast<int64_t>(front + take));
        v = own.load(std::memory_order_relaxed);
      }
    }
  }
  // Then the others' leftovers, one element at a time from the back of whichever range has the most left.
  for (;;) {
    Range* victim = nullptr;
    uint64_t v = 0, most = 0;
    for (Range& r : ranges_) {
      const uint64_t rv = r.v.load(std::memory_order_relaxed);
      const uint64_t front = rv & 0xffffffffu, back = rv >> 32;
      if (back > front && back - front > most) {
        victim = &r;
        v = rv;
        most = back - front;
      }
    }
    if (victim == nullptr) return;
    const auto back = static_cast<int64_t>(v >> 32);
    if (victim->v.compare_exchange_weak(v, v - (uint64_t{1} << 32), std::memory_order_relaxed)) (*job_)(back - 1, back);
  }
}

void ThreadPool::WorkerLoop() {
  uint32_t seen = 0;
  for (;;) {
    uint64_t s = state_.load(std::memory_order_acquire);
    for (int spins = 0; Sequence(s) == seen && spins < kSpinIterations; ++spins) {
      CpuRelax();
      s = state_.load(std::memory_order_acquire);
    }
    if (Sequence(s) == seen) {
      std::unique_lock<std::mutex> lock(mu_);
      ++sleepers_;
      start_cv_.wait(lock, [&] { return Sequence(state_.load(std::memory_order_relaxed)) != seen; });
      --sleepers_;
      if (stop_.load(std::memory_order_relaxed)) return;
      s = state_.load(std::memory_order_acquire);
    }
    seen = Sequence(s);
    // Join unless the job is already closed (the caller took every chunk) or replaced by a newer one.
    bool joined = false;
    while (Sequence(s) == seen && (s & kClosed) == 0) {
      if (state_.compare_exchange_weak(s, s + 1, std::memory_order_acquire, std::memory_order_acquire)) {
        joined = true;
        break;
      }
    }
    if (joined) {
      Work(joins_.fetch_add(1, std::memory_order_relaxed));
      state_.fetch_sub(1, std::memory_order_release);
    } else if (stop_.load(std::memory_order_relaxed)) {
      return;  // the destructor's sequence number (published with release after stop_ was set)
    }
  }
}

}  // namespace qforge
