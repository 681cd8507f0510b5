// Read-bandwidth probe: each thread sums 64-bit words of its own contiguous slice, read as 4 streams; the sum
// is kept so the reads cannot be optimised away. The buffer asks for huge pages, as the runtime's packed
// weight copies do (llama_model.cc): with 4 KB pages this VM's probe read ~10-20% less, and the bound it
// defines would flatter the runtime.
//
// Several readers, and the bound is the best of them: a plain 4-stream loop (one stream per thread left ~15%
// of the bandwidth unused at 1 thread), and the same 4 streams advancing one 64-byte line at a time in turn,
// each line prefetched 2 or 3 KB ahead, the way the decode kernels read (packed_x16_avx512.cc). On session 10's
// Xeon (1 thread, 512 MB) the plain reader read 16-17 GB/s and the prefetching ones 19.5-19.8; the x16 decode
// kernels, 16.5 from DRAM, had read "101-108%" of the plain reader's bound.
#include "qforge/runtime/memory_bandwidth.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>

#include "bandwidth_readers.h"
#include "qforge/core/huge_pages.h"
#include "qforge/runtime/thread_pool.h"

namespace qforge {

using bandwidth::kReaders;
using bandwidth::Reader;

double MeasureReadBandwidth(size_t buffer_bytes, int threads, int repeats) {
  const size_t words = std::max<size_t>(buffer_bytes / 8, 1024);
  const HugePageBuffer owner = AllocateHugePages(words * 8);
  if (owner == nullptr) return 0;
  auto* buf = reinterpret_cast<uint64_t*>(owner.get());
  for (size_t i = 0; i < words; ++i) buf[i] = i;  // touch every page
  ThreadPool pool(threads);
  std::atomic<uint64_t> sink{0};
  double best = 0;
  for (int r = 0; r < repeats; ++r) {
    for (const Reader read : kReaders) {
      auto t0 = std::chrono::steady_clock::now();
      pool.Run(static_cast<int64_t>(words), [&](int64_t b, int64_t e) { sink += read(buf, b, e); });
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      best = std::max(best, static_cast<double>(words * 8) / s);
    }
  }
  return sink.load() == 1 ? best + 1e-9 : best;  // use the sink
}

}  // namespace qforge
