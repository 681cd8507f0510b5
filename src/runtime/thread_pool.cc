// Spin, then sleep: between the many short jobs of one token (a job per matrix product, microseconds
// apart) workers spin on the job counter, which costs far less than a condition-variable wake-up per job;
// a worker that saw no job for a while goes to sleep on the condition variable, so idle pools (and pools
// with more threads than free cores, where spinning is what makes ggml slow down badly) do not burn CPU.
#include "qforge/runtime/thread_pool.h"

#include <algorithm>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace qforge {
namespace {

// About a millisecond of spinning: longer than the gap between two products of one token, shorter than
// anything a user would notice as a busy idle thread.
constexpr int kSpinIterations = 1 << 14;

inline void CpuRelax() {
#if defined(__x86_64__)
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}

void ChunkOf(int64_t n, int parts, int index, int64_t* b, int64_t* e) {
  const int64_t chunk = (n + parts - 1) / parts;
  *b = std::min(n, chunk * index);
  *e = std::min(n, *b + chunk);
}

}  // namespace

ThreadPool::ThreadPool(int threads) {
  for (int i = 1; i < std::max(1, threads); ++i) workers_.emplace_back([this, i] { WorkerLoop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    generation_.fetch_add(1, std::memory_order_release);
  }
  start_cv_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadPool::Run(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  if (workers_.empty() || n < 2) {
    if (n > 0) fn(0, n);
    return;
  }
  Dispatch(n, 0, fn);
}

void ThreadPool::RunChunks(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  grain = std::max<int64_t>(1, grain);
  if (workers_.empty() || n <= grain) {
    for (int64_t b = 0; b < n; b += grain) fn(b, std::min(n, b + grain));
    return;
  }
  Dispatch(n, grain, fn);
}

void ThreadPool::Dispatch(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  job_ = &fn;
  n_ = n;
  grain_ = grain;
  next_.store(0, std::memory_order_relaxed);
  pending_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
  bool wake;
  {
    // The generation changes under the lock so that a worker going to sleep cannot miss it.
    std::lock_guard<std::mutex> lock(mu_);
    generation_.fetch_add(1, std::memory_order_release);
    wake = sleepers_ > 0;
  }
  if (wake) start_cv_.notify_all();
  Work(0);
  for (int spins = 0; pending_.load(std::memory_order_acquire) != 0; ++spins) {
    if (spins < kSpinIterations) {
      CpuRelax();
    } else {
      std::this_thread::yield();  // a worker may be descheduled: give it the core
    }
  }
  job_ = nullptr;
}

void ThreadPool::Work(int index) {
  if (grain_ == 0) {
    int64_t b, e;
    ChunkOf(n_, threads(), index, &b, &e);
    if (b < e) (*job_)(b, e);
    return;
  }
  for (;;) {
    const int64_t b = next_.fetch_add(grain_, std::memory_order_relaxed);
    if (b >= n_) return;
    (*job_)(b, std::min(n_, b + grain_));
  }
}

void ThreadPool::WorkerLoop(int index) {
  uint64_t seen = 0;
  for (;;) {
    int spins = 0;
    while (generation_.load(std::memory_order_acquire) == seen && spins < kSpinIterations) {
      CpuRelax();
      ++spins;
    }
    if (generation_.load(std::memory_order_acquire) == seen) {
      std::unique_lock<std::mutex> lock(mu_);
      ++sleepers_;
      start_cv_.wait(lock, [&] { return generation_.load(std::memory_order_relaxed) != seen; });
      --sleepers_;
    }
    seen = generation_.load(std::memory_order_acquire);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return;
    }
    Work(index);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

}  // namespace qforge
