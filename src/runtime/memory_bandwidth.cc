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

#include "qforge/core/huge_pages.h"
#include "qforge/runtime/thread_pool.h"

namespace qforge {
namespace {

constexpr int64_t kLineWords = 8;  // 64-byte lines

// Words [b, e) as 4 streams in lockstep, one word of each at a time.
uint64_t ReadPlain(const uint64_t* buf, int64_t b, int64_t e) {
  const int64_t q = (e - b) / 4;
  const uint64_t* p0 = buf + b;
  const uint64_t* p1 = p0 + q;
  const uint64_t* p2 = p1 + q;
  const uint64_t* p3 = p2 + q;
  uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  for (int64_t i = 0; i < q; ++i) {
    s0 += p0[i];
    s1 += p1[i];
    s2 += p2[i];
    s3 += p3[i];
  }
  for (int64_t i = b + 4 * q; i < e; ++i) s0 += buf[i];  // the last (e - b) % 4 words
  return s0 + s1 + s2 + s3;
}

// Words [b, e) as 4 streams, one line of each in turn, each line prefetched kAheadBytes on.
template <int kAheadBytes>
uint64_t ReadPrefetched(const uint64_t* buf, int64_t b, int64_t e) {
  const int64_t q = (e - b) / 4 / kLineWords * kLineWords;
  const uint64_t* p[4] = {buf + b, buf + b + q, buf + b + 2 * q, buf + b + 3 * q};
  uint64_t s[4][kLineWords] = {};
  for (int64_t i = 0; i < q; i += kLineWords) {
    for (int k = 0; k < 4; ++k) {
      // The prefetch may point past the slice (even past the buffer): prefetches never fault.
      __builtin_prefetch(p[k] + i + kAheadBytes / 8, 0, 3);
      for (int w = 0; w < kLineWords; ++w) s[k][w] += p[k][i + w];
    }
  }
  uint64_t t = 0;
  for (const auto& stream : s)
    for (const uint64_t v : stream) t += v;
  for (int64_t i = b + 4 * q; i < e; ++i) t += buf[i];
  return t;
}

using Reader = uint64_t (*)(const uint64_t*, int64_t, int64_t);
constexpr Reader kReaders[] = {ReadPlain, ReadPrefetched<2048>, ReadPrefetched<3072>};

}  // namespace

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
