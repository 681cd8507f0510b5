// AMX kernels for prefill on the x16 layouts (packed_x16.h), bit-exact with their scalar spec; decode (one
// activation) stays on the AVX-512 VNNI kernel, since a tile product needs 16 activations to pay off. The tile
// products give each block's exact sums for 16 activations x 16 rows (amx_tiles_inl.h); per block the spec then
// needs d = dw * da and one FMA per sum, done on the stored sums with AVX-512: each row of the stored tile is one
// activation with the 16 weight rows as lanes, the VNNI kernel's orientation, so the float steps are its own.
// What AMX saves is the integer work: 16 vpdpbusd per block and activation, 256 for a tile of 16 of each.
//   Q8_0: the weights are signed bytes already in tile layout: B loads straight from the packed matrix.
//   Q4_0: each 16-row group's nibbles are unpacked once to signed bytes (q - 8) in a scratch buffer, then read
//     by every tile of activations.
// The activations are rearranged once per batch and thread into tile order ([tile][block][16][32] bytes, the
// rows past the batch zero) and kept while the batch is the same (SameBatch): a layer's matrices are called
// many times with one batch (each thread's share of rows, each matrix of a group).
// Measured (bench/matvec_bench.cc, matmul64, 4096 x 4096, 64 activations, 1 thread, Sapphire Rapids VM):
// Q8_0 2.9-3.3 ms against 6.9-7.5 for AVX-512 VNNI, Q4_0 4.0-4.4 against 6.5-6.9.
#include "packed_x16.h"

#if defined(__x86_64__)
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "amx_tiles_inl.h"
#include "packed_avx512_inl.h"
#include "packed_x16_act.h"
#include "qforge/core/cpu_features.h"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace qforge {
namespace {

using namespace amx;  // NOLINT(google-build-using-namespace): the file's whole vocabulary
using packed::StoreGroup;

// The batch's activations in tile order, per thread.
struct Arranged {
  std::vector<uint64_t> serials;  // of the batch it holds (SameBatch)
  int64_t cols = 0;
  std::vector<int8_t> qs;  // [tile][block][16][32]
  std::vector<float> d;    // [tile][block][16]: the activations' block scales, 0 past the batch
};

const Arranged& Arrange(const PreparedActivation* acts, int n) {
  thread_local Arranged a;
  const int64_t cols = acts[0].cols, nb = cols / 32;
  if (SameBatch(acts, n, cols, &a.cols, &a.serials)) return a;
  const int tiles = (n + kTile - 1) / kTile;
  a.qs.assign(static_cast<size_t>(tiles) * nb * kBlockBytes, 0);
  a.d.assign(static_cast<size_t>(tiles) * nb * kTile, 0.0f);
  for (int t = 0; t < n; ++t) {
    const X16ActView v = MakeX16ActView(acts[t]);
    const size_t tile = t / kTile, row = t % kTile;
    for (int64_t b = 0; b < nb; ++b) {
      std::memcpy(a.qs.data() + (tile * nb + b) * kBlockBytes + row * 32, v.qs + 32 * b, 32);
      a.d[(tile * nb + b) * kTile + row] = v.d[b];
    }
  }
  return a;
}

// Each op: kQ quant bytes per block, kMinBatch, and Weights(group, nb, scratch): the group's blocks as signed
// bytes in tile layout (kBlockBytes per block).
struct Q8_0Amx {
  static constexpr int kQ = 32;
  static constexpr int kMinBatch = kMinBatchInPlace;
  static constexpr GgmlType kType = GgmlType::Q8_0;
  QF_AMX static const int8_t* Weights(const uint8_t* group, int64_t /*nb*/, std::vector<int8_t>* /*scratch*/) {
    return reinterpret_cast<const int8_t*>(group);
  }
};

struct Q4_0Amx {
  static constexpr int kQ = 16;
  static constexpr int kMinBatch = kMinBatchUnpacked;
  static constexpr GgmlType kType = GgmlType::Q4_0;
  // Chunk c of a block holds elements 4c..4c+3 of every row in its low nibbles and 16+4c.. in its high ones:
  // B row c and B row 4 + c.
  QF_AMX static const int8_t* Weights(const uint8_t* group, int64_t nb, std::vector<int8_t>* scratch) {
    scratch->resize(static_cast<size_t>(nb) * kBlockBytes);
    int8_t* out = scratch->data();
    const __m512i low4 = _mm512_set1_epi8(0x0F), eight = _mm512_set1_epi8(8);
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* q = group + 16 * kQ * b;
      int8_t* o = out + kBlockBytes * b;
      for (int c = 0; c < 4; ++c) {
        const __m512i v = _mm512_loadu_si512(q + 64 * c);
        _mm512_storeu_si512(o + 64 * c, _mm512_sub_epi8(_mm512_and_si512(v, low4), eight));
        _mm512_storeu_si512(o + 64 * (4 + c), _mm512_sub_epi8(_mm512_and_si512(_mm512_srli_epi16(v, 4), low4), eight));
      }
    }
    QF_TILE_BARRIER();
    return out;
  }
};

// acc[t] (lane r: activation t, weight row r) += float(sums[t][r]) * (dw[r] * da[t]) for one block, as the
// spec orders it.
QF_AMX inline void Accumulate(__m512* acc, const int32_t* sums, const uint8_t* scales, const float* da) {
  const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(scales)));
  for (int t = 0; t < kTile; ++t) {
    const __m512 d = _mm512_mul_ps(dw, _mm512_set1_ps(da[t]));
    acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(sums + kTile * t)), d, acc[t]);
  }
}

// Blocks b and (if there is one) b + 1 from their stored sums.
QF_AMX inline void AccumulatePair(__m512* acc, const Sums* sums, int64_t b, int64_t nb,
                                  const uint8_t* scales, const float* da) {
  Accumulate(acc, sums[0], scales + 32 * b, da + kTile * b);
  if (b + 1 < nb) Accumulate(acc, sums[1], scales + 32 * (b + 1), da + kTile * (b + 1));
}

template <class Op>
QF_AMX void AmxRowsBatch(const uint8_t* w, size_t row_bytes, const PreparedActivation* acts, int n, float* y,
                         size_t ldy, int64_t r0, int64_t r1) {
  if (r0 >= r1 || n <= 0) return;
  if (n < Op::kMinBatch) return Avx512X16Kernel(Op::kType)->rows_batch(w, row_bytes, acts, n, y, ldy, r0, r1);
  const int64_t nb = acts[0].cols / 32;
  const Arranged& a = Arrange(acts, n);
  thread_local std::vector<int8_t> scratch;
  QF_TILE_BARRIER();
  const ScopedTileConfig<32> tiles_config;
  const size_t stride = kTile * row_bytes;
  const int tiles = (n + kTile - 1) / kTile;
  for (int64_t g = r0 / kTile; g * kTile < r1; ++g) {
    const uint8_t* group = w + g * stride;
    const int8_t* wq = Op::Weights(group, nb, &scratch);
    const uint8_t* scales = group + kTile * Op::kQ * nb;
    for (int tile = 0; tile < tiles; ++tile) {
      const int8_t* at = a.qs.data() + static_cast<size_t>(tile) * nb * kBlockBytes;
      const float* dt = a.d.data() + static_cast<size_t>(tile) * nb * kTile;
      __m512 acc[kTile];
      for (int t = 0; t < kTile; ++t) acc[t] = _mm512_setzero_ps();
      // Blocks go through the tiles two at a time, and each pair's sums are scaled one step later, while the
      // next pair's tile products run, so that the vector loads do not wait on the tile store just issued
      // (measured: a few percent; tile work and scaling still overlap little, bench/README.md).
      alignas(64) Sums sums[2][2];
      int64_t prev = -1;  // the pair whose sums wait in sums[prev_slot]
      int prev_slot = 0;
      for (int64_t b = 0; b < nb; b += 2) {
        const int slot = 1 - prev_slot;
        TileProducts<true>(at + kBlockBytes * b, wq + kBlockBytes * b, b + 1 < nb);
        Prefetch2Blocks(at + kBlockBytes * (b + kAheadBlocks));
        Prefetch2Blocks(wq + kBlockBytes * (b + kAheadBlocks));
        if (prev >= 0) AccumulatePair(acc, sums[prev_slot], prev, nb, scales, dt);
        StoreSums(b + 1 < nb, sums[slot][0], sums[slot][1]);
        prev = b;
        prev_slot = slot;
      }
      AccumulatePair(acc, sums[prev_slot], prev, nb, scales, dt);
      // Constant indices only (the loop is unrolled): one runtime index into acc[] and GCC keeps the whole
      // array on the stack, a load and a store more per FMA.
      const int valid = std::min(kTile, n - tile * kTile);
#pragma GCC unroll 16
      for (int t = 0; t < kTile; ++t)
        if (t < valid) StoreGroup(acc[t], g, r0, r1, y + static_cast<size_t>(tile * kTile + t) * ldy + r0);
    }
  }
}

}  // namespace

const MatVecKernel* AmxX16Kernel(GgmlType type) {
  if (!CpuHasAmxInt8()) return nullptr;
  const MatVecKernel* vnni = Avx512X16Kernel(type);
  if (vnni == nullptr) return nullptr;
  // Same prepare and decode as the VNNI kernel; only the batch differs.
  switch (type) {
    case GgmlType::Q4_0: {
      static const MatVecKernel k = {"amx", vnni->prepare, vnni->rows, AmxRowsBatch<Q4_0Amx>};
      return &k;
    }
    case GgmlType::Q8_0: {
      static const MatVecKernel k = {"amx", vnni->prepare, vnni->rows, AmxRowsBatch<Q8_0Amx>};
      return &k;
    }
    default: return nullptr;
  }
}

}  // namespace qforge
#else
namespace qforge {
const MatVecKernel* AmxX16Kernel(GgmlType) { return nullptr; }
}  // namespace qforge
#endif
