// A persistent pool of worker threads for the runtime's per-token work (spawning threads per
// matrix-vector product would cost more than the product on small models). Run() splits [0, n) into one
// contiguous chunk per thread; RunChunks() hands out `grain`-sized chunks to whichever thread is free (so a
// thread slowed by other load on the machine does not hold up the rest); RunRanges() gives each thread its own
// contiguous range, taken piece by piece from the front, and lets a thread that is done take single elements
// from the back of the others' ranges. All return when all chunks are done; results never depend on the thread count
// or on which thread ran a chunk (a worker that has not joined a job by the time its chunks are all taken
// skips it, so a descheduled worker never delays the caller).
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
  // fn(begin, end) on disjoint chunks covering [0, n), one per thread (chunk i of n / threads() elements is
  // taken by whichever thread claims it first; the calling thread claims as long as any are left).
  void Run(int64_t n, const std::function<void(int64_t, int64_t)>& fn);
  // fn(begin, end) on disjoint chunks of `grain` (the last one shorter) covering [0, n), taken dynamically.
  void RunChunks(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);
  // fn(begin, end) on disjoint pieces covering [0, n). [0, n) is cut into one range of whole `grain`s per
  // thread; each thread runs its own range in order from the front, `grain` at a time (single elements over
  // its last 2 * grain), and then takes single elements from the back of the range with the most left, until
  // none are left. For streaming work (decode's matrix-vector products): each thread reads one contiguous
  // stretch of memory, so the prefetches at the end of one piece run on into its next, while a thread that is
  // slow or joins late still has its leftovers shared out at the end, finely.
  void RunRanges(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

 private:
  enum class Split { kFixed, kRanges };
  void Dispatch(int64_t n, int64_t grain, Split split, const std::function<void(int64_t, int64_t)>& fn);
  void Work(int64_t index);
  void WorkRanges(int64_t index);
  void WorkerLoop();

  // state_ packs the job's sequence number (high 32 bits), a "closed" bit (no more joins: every chunk was
  // taken) and the number of workers inside the job (low bits). Workers join with a compare-and-swap that
  // fails once the job is closed or replaced; the caller closes the job after its own Work() and waits only
  // for the workers that joined.
  static constexpr uint64_t kClosed = uint64_t{1} << 31;
  static constexpr uint64_t kInsideMask = kClosed - 1;
  static uint32_t Sequence(uint64_t state) { return static_cast<uint32_t>(state >> 32); }

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable start_cv_;
  // The job, written by the caller before it publishes a new sequence number, read by workers that joined it.
  const std::function<void(int64_t, int64_t)>* job_ = nullptr;
  int64_t n_ = 0;
  int64_t grain_ = 1;
  Split split_ = Split::kFixed;
  std::atomic<int64_t> next_{0};  // next chunk start
  // RunRanges: thread i's range, [front, back) packed as front | back << 32 (each side moves with
  // one compare-and-swap); the caller is thread 0 and workers number themselves from joins_ as they join.
  struct alignas(64) Range {
    std::atomic<uint64_t> v{0};
  };
  std::vector<Range> ranges_;
  std::atomic<int64_t> joins_{0};
  std::atomic<uint64_t> state_{0};
  int sleepers_ = 0;  // guarded by mu_
  std::atomic<bool> stop_{false};  // set before the destructor's final sequence number is published
};

}  // namespace qforge
