// Shared by the AVX-512 VNNI kernels on packed 16-row layouts (packed_x16_avx512.cc, packed_k16_avx512.cc):
// their target attribute, the decode streaming parameters, the broadcast of 4 activation bytes to every row
// lane, the store of one group's 16 results, and the two row-range drivers (decode: several groups streamed at
// once; prefill: each group against tiles of activations). x86-64 translation units only.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "qforge/kernels/matvec.h"

#define QF_PACKED_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))

namespace qforge::packed {

inline constexpr int64_t kGroupRows = 16;

// How far ahead decode prefetches each group's stream, and how many groups it reads at once (kX16DecodeGroups;
// the k16 layouts read 2, packed_k16_avx512.cc). Measured with bench/matvec_bench.cc (matvec_stream, Q4_0, 1
// thread, Zen 4): one stream read DRAM at ~16 GB/s whatever the prefetch; 4 streams with T0 prefetches 1-2 KB
// ahead ~27-33 GB/s, against ~22-25 for the stored-layout kernel's 8 row streams (2 streams ~25-28, 8 no better
// than 4; NTA and T1 hints, 4 KB ahead, or a prefetch per 128 bytes instead of per line no better). Giving each
// stream a contiguous quarter of the groups (so that its prefetches run on into its next group) streamed slower:
// Q4_0 27-32 GB/s, Q4_K ~20 against 24-31 with adjacent groups. Masking high nibbles in place (16x their
// value, the sum shifted back once) instead of shifting each chunk changed nothing measurable either. On
// session 9's Xeon, from DRAM: 4 groups still best for x16 (runtime decode at 4 against 2 groups: Q4_0 88-91 vs
// 84% of the probe at 2 threads, Q8_0 92-93 vs 88%).
inline constexpr int64_t kAhead = 2048;
inline constexpr int kX16DecodeGroups = 4;

// Where a decode stream prefetches `ahead` bytes on from p: past `end`, the end of what the stream reads in its
// group, the same distance on into what it reads next, from `next` on (NextInStream: the same part of the group
// kGroups further, which this stream reads next when the caller's rows go on; not group g + 1, which another
// stream has read). Plain integers: `next` may lie past the matrix, and a prefetch there is harmless. Before,
// each new set of groups started cold and the prefetches at the end of a group fetched lines already read
// (matvec_stream_t2, Xeon: q4_0x16 92-94 -> 94-97% of the probe, q8_0x16 98 -> 99%; within this VM's drift).
// The k16 decodes do not use it: in q6_kx16's unrolled steps the extra address arithmetic per prefetch cost
// more than it gained (matvec_stream q6_kx16 0.96-0.99 -> 0.87-0.94 of the probe, 3 runs each).
inline const char* StreamAhead(const uint8_t* p, int64_t ahead, const uint8_t* end, uintptr_t next) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p) + static_cast<uintptr_t>(ahead);
  const uintptr_t e = reinterpret_cast<uintptr_t>(end);
  return reinterpret_cast<const char*>(a < e ? a : next + (a - e));
}
inline uintptr_t NextInStream(const uint8_t* start, size_t stride, int groups) {
  return reinterpret_cast<uintptr_t>(start) + stride * static_cast<size_t>(groups);
}

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

// The drivers below take an Op describing one layout's kernels:
//   using View = ...;                                  what a kernel reads of one prepared activation
//   static View MakeView(const PreparedActivation&);
//   static size_t GroupBytes(size_t row_bytes, int64_t cols);   from one group of 16 rows to the next
//   static constexpr int kMaxActs;                    widest prefill tile (a power of 2)
//   static constexpr int kDecodeGroups;               groups (streams) decode reads at once
//   template <int kGroups> static void Decode(const uint8_t* first, size_t stride, int64_t cols, const View&,
//                                             __m512* out);  groups first, first + stride, ... for one activation
//   template <int kActs> static void Tile(const uint8_t* group, int64_t cols, const View* acts, __m512* out);
// (member templates, so that they keep their target attribute, which lambdas would lose). out[k] lane r is row
// r of that group.

// Decode: Op::kDecodeGroups adjacent groups at a time, each its own stream, then the leftover groups one by one.
template <class Op>
QF_PACKED_AVX512 void Rows(const uint8_t* w, size_t row_bytes, const PreparedActivation& act, float* y, int64_t r0,
                           int64_t r1) {
  if (r0 >= r1) return;
  const typename Op::View view = Op::MakeView(act);
  const size_t stride = Op::GroupBytes(row_bytes, act.cols);
  const int64_t g1 = (r1 + kGroupRows - 1) / kGroupRows;
  int64_t g = r0 / kGroupRows;
  constexpr int kGroups = Op::kDecodeGroups;
  __m512 v[kGroups];
  for (; g + kGroups <= g1; g += kGroups) {
    Op::template Decode<kGroups>(w + g * stride, stride, act.cols, view, v);
    for (int k = 0; k < kGroups; ++k) StoreGroup(v[k], g + k, r0, r1, y);
  }
  for (; g < g1; ++g) {
    Op::template Decode<1>(w + g * stride, stride, act.cols, view, v);
    StoreGroup(v[0], g, r0, r1, y);
  }
}

// One prefill tile: the widest of kActs, kActs / 2, ..., 1 that `left` activations fill. Returns its width.
template <class Op, int kActs>
QF_PACKED_AVX512 int TileStep(const uint8_t* group, const PreparedActivation* acts, int left, __m512* out) {
  if constexpr (kActs > 1) {
    if (left < kActs) return TileStep<Op, kActs / 2>(group, acts, left, out);
  }
  typename Op::View views[kActs];
  for (int t = 0; t < kActs; ++t) views[t] = Op::MakeView(acts[t]);
  Op::template Tile<kActs>(group, acts[0].cols, views, out);
  return kActs;
}

// Prefill: each group's weights are unpacked once per tile of activations.
template <class Op>
QF_PACKED_AVX512 void RowsBatch(const uint8_t* w, size_t row_bytes, const PreparedActivation* acts, int n, float* y,
                                size_t ldy, int64_t r0, int64_t r1) {
  if (r0 >= r1 || n <= 0) return;
  const size_t stride = Op::GroupBytes(row_bytes, acts[0].cols);
  __m512 out[Op::kMaxActs];
  for (int64_t g = r0 / kGroupRows; g * kGroupRows < r1; ++g) {
    for (int t0 = 0; t0 < n;) {
      const int k = TileStep<Op, Op::kMaxActs>(w + g * stride, acts + t0, n - t0, out);
      for (int t = 0; t < k; ++t) StoreGroup(out[t], g, r0, r1, y + static_cast<size_t>(t0 + t) * ldy + r0);
      t0 += k;
    }
  }
}

}  // namespace qforge::packed
