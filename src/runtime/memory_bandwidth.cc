// Read-bandwidth probe: each thread sums 64-bit words of its own contiguous slice (the compiler vectorises
// the loop); the sum is kept so the reads cannot be optimised away.
#include "qforge/runtime/memory_bandwidth.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>

#include "qforge/runtime/thread_pool.h"

namespace qforge {

double MeasureReadBandwidth(size_t buffer_bytes, int threads, int repeats) {
  const size_t words = std::max<size_t>(buffer_bytes / 8, 1024);
  std::unique_ptr<uint64_t[]> buf(new uint64_t[words]);
  for (size_t i = 0; i < words; ++i) buf[i] = i;  // touch every page
  ThreadPool pool(threads);
  std::atomic<uint64_t> sink{0};
  double best = 0;
  for (int r = 0; r < repeats; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    pool.Run(static_cast<int64_t>(words), [&](int64_t b, int64_t e) {
      uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      int64_t i = b;
      for (; i + 4 <= e; i += 4) {
        s0 += buf[i];
        s1 += buf[i + 1];
        s2 += buf[i + 2];
        s3 += buf[i + 3];
      }
      for (; i < e; ++i) s0 += buf[i];
      sink += s0 + s1 + s2 + s3;
    });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, static_cast<double>(words * 8) / s);
  }
  return sink.load() == 1 ? best + 1e-9 : best;  // use the sink
}

}  // namespace qforge
