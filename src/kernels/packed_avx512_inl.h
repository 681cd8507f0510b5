// Shared by the AVX-512 VNNI kernels on packed 16-row layouts (packed_x16_avx512.cc, packed_k16_avx512.cc):
// their target attribute, the decode streaming parameters, the broadcast of 4 activation bytes to every row
// lane, and the store of one group's 16 results. x86-64 translation units only.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#define QF_PACKED_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))

namespace qforge::packed {

inline constexpr int64_t kGroupRows = 16;

// How far ahead decode prefetches each group's stream, and how many groups it reads at once. Measured with
// bench/matvec_bench.cc (matvec_stream, Q4_0, 1 thread): one stream read DRAM at ~16 GB/s whatever the
// prefetch; 4 streams with T0 prefetches 1-2 KB ahead ~27-33 GB/s, against ~22-25 for the stored-layout
// kernel's 8 row streams (2 streams ~25-28, 8 no better than 4; NTA and T1 hints, 4 KB ahead, or a prefetch
// per 128 bytes instead of per line no better). Q4_K measured the same within the noise. Giving each stream a
// contiguous quarter of the groups (so that its prefetches run on into its next group) streamed slower:
// Q4_0 27-32 GB/s, Q4_K ~20 against 24-31 with adjacent groups. Masking high nibbles in place (16x their
// value, the sum shifted back once) instead of shifting each chunk changed nothing measurable either.
inline constexpr int64_t kAhead = 2048;
inline constexpr int kDecodeGroups = 4;

QF_PACKED_AVX512 inline __m512i Broadcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// Writes the rows of group g that fall in [r0, r1) from v to y[r - r0] (a whole group: one store).
QF_PACKED_AVX512 inline void StoreGroup(__m512 v, int64_t g, int64_t r0, int64_t r1, float* y) {
  const int64_t first = g * kGroupRows;
  if (first >= r0 && first + kGroupRows <= r1) {
    _mm512_storeu_ps(y + (first - r0), v);
    return;
  }
  alignas(64) float tmp[kGroupRows];
  _mm512_store_ps(tmp, v);
  for (int64_t r = std::max(r0, first); r < std::min(r1, first + kGroupRows); ++r) y[r - r0] = tmp[r - first];
}

}  // namespace qforge::packed
