// AMX kernels for prefill on q4_kx16 and q6_kx16 (packed_k16.h), bit-exact with the Q4_K and Q6_K specs; decode
// (one activation) stays on the AVX-512 VNNI kernels. Each sub-block is one tile product (amx_tiles_inl.h) of
// 16 activations against the 16 rows' weights, giving the sub-block dots dot_s exactly:
//   Q4_K: 32-element sub-blocks, unsigned nibbles (TDPBSUD); the mins enter through the spec's summs term.
//   Q6_K: 16-element sub-blocks (a tile product of half the depth), weights fed as q - 32 (TDPBSSD).
// The spec's integers isum = sum_s sc_s * dot_s are then formed with AVX-512 on the stored sums, in float where
// that is exact (the ops' AddPair), and once per super-block the VNNI kernels' own float steps run per
// activation (CombineK).
// The weights of a 16-row group are unpacked once into a scratch buffer in tile order, then read by every tile
// of activations; the activations are rearranged once per batch and thread ([tile][super-block][sub-block][16]
// [depth] bytes, with their scales and bsum pairs) and kept while the batch is the same (SameBatch).
// Measured (bench/matvec_bench.cc, matmul64, 4096 x 4096, 64 activations, 1 thread, Sapphire Rapids VM):
// Q4_K 4.2 ms against 7.0 for AVX-512 VNNI; Q6_K see bench/README.md.
#include "packed_k16.h"

#if defined(__x86_64__)
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "amx_tiles_inl.h"
#include "packed_avx512_inl.h"
#include "packed_k16_inl.h"
#include "qforge/core/cpu_features.h"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace qforge {
namespace {

using namespace amx;  // NOLINT(google-build-using-namespace): the file's whole vocabulary
using namespace k16;  // NOLINT(google-build-using-namespace): the shared float steps
using packed::StoreGroup;

// The batch's activations in tile order, per thread: sub-blocks of kDepth elements, and per super-block the
// scales and (Q4_K) the paired bsums.
template <int kDepth>
struct Arranged {
  static constexpr int kSubBlocks = 256 / kDepth;
  static constexpr size_t kSuperBytes = kSubBlocks * kDepthBytes<kDepth>;  // one super-block of a tile
  std::vector<uint64_t> serials;  // of the batch it holds (SameBatch)
  int64_t cols = 0;
  std::vector<int8_t> qs;       // [tile][super-block][sub-block][16][kDepth]
  std::vector<float> d;         // [tile][super-block][16]: the activations' scales, 0 past the batch
  std::vector<int32_t> bpairs;  // [tile][super-block][16][4]: their paired bsums (K16ActView), 0 past the batch
};

template <int kDepth>
const Arranged<kDepth>& Arrange(const PreparedActivation* acts, int n) {
  using A = Arranged<kDepth>;
  thread_local A a;
  const int64_t cols = acts[0].cols, nsb = cols / 256;
  if (SameBatch(acts, n, cols, &a.cols, &a.serials)) return a;
  const int tiles = (n + kTile - 1) / kTile;
  a.qs.assign(static_cast<size_t>(tiles) * nsb * A::kSuperBytes, 0);
  a.d.assign(static_cast<size_t>(tiles) * nsb * kTile, 0.0f);
  a.bpairs.assign(static_cast<size_t>(tiles) * nsb * kTile * 4, 0);
  for (int t = 0; t < n; ++t) {
    const K16ActView v = MakeK16ActView(acts[t]);
    const size_t tile = t / kTile, row = t % kTile;
    for (int64_t i = 0; i < nsb; ++i) {
      const size_t ti = tile * nsb + i;
      for (int s = 0; s < A::kSubBlocks; ++s)
        std::memcpy(a.qs.data() + ti * A::kSuperBytes + s * kDepthBytes<kDepth> + row * kDepth,
                    v.y[i].qs + kDepth * s, kDepth);
      a.d[ti * kTile + row] = v.y[i].d;
      std::memcpy(a.bpairs.data() + (ti * kTile + row) * 4, v.bpairs + 4 * i, 16);
    }
  }
  return a;
}

// Each op: the tile depth and weight signedness, its packed super-block size, Unpack (a group's weights in tile
// order, [super-block][sub-block][kDepth / 4][64]), and the integer and float steps on the stored sums, which
// keep their running state in registers (`State`).
struct Q4_KAmx {
  static constexpr GgmlType kType = GgmlType::Q4_K;
  static constexpr int kDepth = 32;
  static constexpr bool kSignedWeights = false;  // the nibbles; the mins are the spec's summs term
  static constexpr size_t kPackedSuperBytes = kQ4_K16SuperBytes;

  // A chunk's low nibbles go to sub-block 2j, its high nibbles to 2j + 1.
  QF_AMX static void Unpack(const uint8_t* sb, int8_t* out) {
    const __m512i low4 = _mm512_set1_epi8(0x0F);
    for (int j = 0; j < 4; ++j)
      for (int c = 0; c < 8; ++c) {
        const __m512i v = _mm512_loadu_si512(sb + 512 * j + 64 * c);
        _mm512_storeu_si512(out + (2 * j) * kBlockBytes + 64 * c, _mm512_and_si512(v, low4));
        _mm512_storeu_si512(out + (2 * j + 1) * kBlockBytes + 64 * c, _mm512_and_si512(_mm512_srli_epi16(v, 4), low4));
      }
  }

  // Scaling the sub-block dots in float is exact and cheaper than vpmulld (two uops on one port here; it was a
  // third of the kernel's time): |dot_s| <= 32 * 15 * 128 and sc_s <= 63, so each product is an integer below
  // 3.9e6 and a sum of four below 1.55e7 < 2^24: every FMA over four sub-blocks is exact, and so is the
  // conversion back to int32. A super-block's two halves are summed as integers.
  struct State {
    __m512 part[kTile];   // scaled dots of the current half super-block, exact in float
    __m512i half[kTile];  // the first half's integer sum
  };
  QF_AMX static void Reset(State& st) {
    for (int t = 0; t < kTile; ++t) st.part[t] = _mm512_setzero_ps();
  }
  // The sub-block pair s, s + 1 of super-block sb.
  QF_AMX static void AddPair(State& st, const Sums* sums, const uint8_t* sb, int s) {
    const __m512 sc0 = _mm512_cvtepi32_ps(ScaleQ4_K(sb, s)), sc1 = _mm512_cvtepi32_ps(ScaleQ4_K(sb, s + 1));
#pragma GCC unroll 16
    for (int t = 0; t < kTile; ++t) {
      st.part[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(sums[0] + kTile * t)), sc0, st.part[t]);
      st.part[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(sums[1] + kTile * t)), sc1, st.part[t]);
    }
    if (s == 2) {
#pragma GCC unroll 16
      for (int t = 0; t < kTile; ++t) {
        st.half[t] = _mm512_cvtps_epi32(st.part[t]);
        st.part[t] = _mm512_setzero_ps();
      }
    }
  }
  // The super-block's float steps for the tile's 16 activations.
  QF_AMX static void Finish(State& st, float (*acc)[kTile], const uint8_t* sb, const float* dy, const int32_t* bp) {
#pragma GCC unroll 16
    for (int t = 0; t < kTile; ++t) {
      const __m512i isum = _mm512_add_epi32(st.half[t], _mm512_cvtps_epi32(st.part[t]));
      _mm512_store_ps(acc[t], CombineQ4_K(_mm512_load_ps(acc[t]), isum, sb, bp + 4 * t, dy[t]));
      st.part[t] = _mm512_setzero_ps();
    }
  }
};

struct Q6_KAmx {
  static constexpr GgmlType kType = GgmlType::Q6_K;
  static constexpr int kDepth = 16;             // Q6_K's sub-blocks: 16 elements, each its own scale
  static constexpr bool kSignedWeights = true;  // q - 32, so that no offset term is left
  static constexpr size_t kPackedSuperBytes = kQ6_K16SuperBytes;

  // UnpackQ6_K's q[m] of chunk c holds elements 4(c % 4) + k of sub-block 8h + 2m + c / 4: row c % 4 of its tile.
  QF_AMX static void Unpack(const uint8_t* sb, int8_t* out) {
    const __m512i k32 = _mm512_set1_epi8(32);
    for (int h = 0; h < 2; ++h)
      for (int c = 0; c < 8; ++c) {
        __m512i q[4];
        UnpackQ6_K(sb, h, c, q);
        for (int m = 0; m < 4; ++m)
          _mm512_storeu_si512(out + (8 * h + 2 * m + c / 4) * kDepthBytes<16> + 64 * (c % 4),
                              _mm512_sub_epi8(q[m], k32));
      }
  }

  // |dot_s| <= 16 * 32 * 128 = 2^16 and |sc_s| <= 128, so a scaled dot is at most 2^23 and the sum of a pair at
  // most 2^24: exact in float, and converted to int32 per pair.
  struct State {
    __m512i isum[kTile];
  };
  QF_AMX static void Reset(State& st) {
    for (int t = 0; t < kTile; ++t) st.isum[t] = _mm512_setzero_si512();
  }
  QF_AMX static void AddPair(State& st, const Sums* sums, const uint8_t* sb, int s) {
    const __m512 sc0 = _mm512_cvtepi32_ps(ScaleQ6_K(sb, s)), sc1 = _mm512_cvtepi32_ps(ScaleQ6_K(sb, s + 1));
#pragma GCC unroll 16
    for (int t = 0; t < kTile; ++t) {
      const __m512 p = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_load_si512(sums[0] + kTile * t)), sc0);
      const __m512 q = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(sums[1] + kTile * t)), sc1, p);
      st.isum[t] = _mm512_add_epi32(st.isum[t], _mm512_cvtps_epi32(q));
    }
  }
  QF_AMX static void Finish(State& st, float (*acc)[kTile], const uint8_t* sb, const float* dy,
                            const int32_t* /*bp*/) {
#pragma GCC unroll 16
    for (int t = 0; t < kTile; ++t) {
      _mm512_store_ps(acc[t], CombineQ6_K(_mm512_load_ps(acc[t]), st.isum[t], sb, dy[t]));
      st.isum[t] = _mm512_setzero_si512();
    }
  }
};

template <class Op>
QF_AMX void AmxRowsBatch(const uint8_t* w, size_t row_bytes, const PreparedActivation* acts, int n, float* y,
                         size_t ldy, int64_t r0, int64_t r1) {
  if (r0 >= r1 || n <= 0) return;
  if (n < kMinBatchUnpacked) return Avx512K16Kernel(Op::kType)->rows_batch(w, row_bytes, acts, n, y, ldy, r0, r1);
  constexpr int kDepth = Op::kDepth;
  constexpr int kSubBlocks = 256 / kDepth;
  constexpr size_t kSuperBytes = Arranged<kDepth>::kSuperBytes;
  const int64_t nsb = acts[0].cols / 256;
  const Arranged<kDepth>& a = Arrange<kDepth>(acts, n);
  thread_local std::vector<int8_t> scratch;
  const size_t stride = static_cast<size_t>(nsb) * Op::kPackedSuperBytes;
  const int tiles = (n + kTile - 1) / kTile;
  const int64_t pairs = nsb * kSubBlocks / 2;
  scratch.resize(static_cast<size_t>(nsb) * kSuperBytes);
  const ScopedTileConfig<kDepth> tiles_config;
  for (int64_t g = r0 / kTile; g * kTile < r1; ++g) {
    const uint8_t* group = w + g * stride;
    for (int64_t i = 0; i < nsb; ++i) Op::Unpack(group + i * Op::kPackedSuperBytes, scratch.data() + i * kSuperBytes);
    QF_TILE_BARRIER();
    const int8_t* wq = scratch.data();
    for (int tile = 0; tile < tiles; ++tile) {
      const int8_t* at = a.qs.data() + static_cast<size_t>(tile) * nsb * kSuperBytes;
      const float* dt = a.d.data() + static_cast<size_t>(tile) * nsb * kTile;
      const int32_t* bt = a.bpairs.data() + static_cast<size_t>(tile) * nsb * kTile * 4;
      alignas(64) float acc[kTile][kTile] = {};
      typename Op::State st;
      Op::Reset(st);
      // Sub-block pairs go through the tiles in order; each pair's sums are scaled one step later, while the
      // next pair's tile products run (see packed_x16_amx.cc), across super-block boundaries too.
      alignas(64) Sums sums[2][2];
      int prev_slot = 0;
      constexpr int kPairBytes = 2 * kDepthBytes<kDepth>;
      for (int64_t k = 0; k <= pairs; ++k) {
        const int slot = 1 - prev_slot;
        if (k < pairs) {
          TileProducts<Op::kSignedWeights, kDepth>(at + kPairBytes * k, wq + kPairBytes * k, true);
          PrefetchBytes(at + kPairBytes * (k + 2), kPairBytes);
          PrefetchBytes(wq + kPairBytes * (k + 2), kPairBytes);
        }
        if (k > 0) {
          const int64_t i = (k - 1) / (kSubBlocks / 2);
          const int s = static_cast<int>(2 * ((k - 1) % (kSubBlocks / 2)));
          const uint8_t* sb = group + i * Op::kPackedSuperBytes;
          Op::AddPair(st, sums[prev_slot], sb, s);
          if (s == kSubBlocks - 2) Op::Finish(st, acc, sb, dt + kTile * i, bt + kTile * 4 * i);
        }
        if (k < pairs) StoreSums(true, sums[slot][0], sums[slot][1]);
        prev_slot = slot;
      }
      const int valid = std::min(kTile, n - tile * kTile);
      for (int t = 0; t < valid; ++t)
        StoreGroup(_mm512_load_ps(acc[t]), g, r0, r1, y + static_cast<size_t>(tile * kTile + t) * ldy + r0);
    }
  }
}

}  // namespace

const MatVecKernel* AmxK16Kernel(GgmlType type) {
  if (!CpuHasAmxInt8()) return nullptr;
  // Same prepare and decode as the VNNI kernels; only the batch differs.
  switch (type) {
    case GgmlType::Q4_K: {
      static const MatVecKernel k = {"amx", Avx512K16Kernel(type)->prepare, Avx512K16Kernel(type)->rows,
                                     AmxRowsBatch<Q4_KAmx>};
      return &k;
    }
    case GgmlType::Q6_K: {
      static const MatVecKernel k = {"amx", Avx512K16Kernel(type)->prepare, Avx512K16Kernel(type)->rows,
                                     AmxRowsBatch<Q6_KAmx>};
      return &k;
    }
    default: return nullptr;
  }
}

}  // namespace qforge
#else
namespace qforge {
const MatVecKernel* AmxK16Kernel(GgmlType) { return nullptr; }
}  // namespace qforge
#endif
