// The read-bandwidth probe's readers (memory_bandwidth.cc), here so that a test can check that each reads
// every word of its range exactly once: a reader that skipped words would report more bandwidth than the
// machine has, and the bound decode is measured against would flatter it. Each returns the sum of the 64-bit
// words [b, e) of buf.
#pragma once

#include <cstdint>

namespace qforge::bandwidth {

inline constexpr int64_t kLineWords = 8;  // 64-byte lines

// [b, e) as 4 streams in lockstep, one word of each at a time.
inline uint64_t ReadPlain(const uint64_t* buf, int64_t b, int64_t e) {
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

// [b, e) as 4 streams, one line of each in turn, each line prefetched kAheadBytes on.
template <int kAheadBytes>
uint64_t ReadPrefetched(const uint64_t* buf, int64_t b, int64_t e) {
  const int64_t q = (e - b) / 4 / kLineWords * kLineWords;
  const uint64_t* p[4] = {buf + b, buf + b + q, buf + b + 2 * q, buf + b + 3 * q};
  uint64_t s[4][kLineWords] = {};
  for (int64_t i = 0; i < q; i += kLineWords) {
    for (int k = 0; k < 4; ++k) {
      // The prefetch may point past the range (even past the buffer): prefetches never fault.
      __builtin_prefetch(p[k] + i + kAheadBytes / 8, 0, 3);
      for (int w = 0; w < kLineWords; ++w) s[k][w] += p[k][i + w];
    }
  }
  uint64_t t = 0;
  for (const auto& stream : s)
    for (const uint64_t v : stream) t += v;
  for (int64_t i = b + 4 * q; i < e; ++i) t += buf[i];  // the words past the last whole line of each stream
  return t;
}

using Reader = uint64_t (*)(const uint64_t*, int64_t, int64_t);
// The probe's readers; it reports the best of them.
inline constexpr Reader kReaders[] = {ReadPlain, ReadPrefetched<2048>, ReadPrefetched<3072>};

}  // namespace qforge::bandwidth
