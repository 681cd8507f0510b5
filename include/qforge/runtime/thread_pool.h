// A persistent pool of worker threads for the runtime's per-token work (spawning threads per
// matrix-vector product would cost more than the product on small models). Run() splits [0, n) into one
// contiguous chunk per thread; RunChunks() hands out `grain`-sized chunks to whichever thread is free (so a
// thread slowed by other load on the machine does not hold up the rest). Both return when all chunks are
// done; results never depend on the thread count or on which thread ran a chunk.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace qforge {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int threads() const { return static_cast<int>(workers_.size()) + 1; }
  // fn(begin, end) on disjoint chunks covering [0, n), one per thread; the calling thread takes the first.
  void Run(int64_t n, const std::function<void(int64_t, int64_t)>& fn);
  // fn(begin, end) on disjoint chunks of `grain` (the last one shorter) covering [0, n), taken dynamically.
  void RunChunks(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

 private:
  void Dispatch(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);
  void Work(int index);
  void WorkerLoop(int index);

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable start_cv_;
  const std::function<void(int64_t, int64_t)>* job_ = nullptr;
  int64_t n_ = 0;
  int64_t grain_ = 0;                  // 0: static split, one chunk per thread
  std::atomic<int64_t> next_{0};       // next chunk start (dynamic split)
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  int sleepers_ = 0;  // guarded by mu_
  bool stop_ = false;
};

}  // namespace qforge
