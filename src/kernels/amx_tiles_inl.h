// Shared by the AMX batch kernels on packed layouts (packed_x16_amx.cc, packed_k16_amx.cc): the target
// attribute, the one tile configuration, the tile products of two 32-element blocks at a time with their
// stores, and the recognition of a batch of activations already rearranged (PreparedActivation::serial).
// x86-64 translation units only.
//
// Tile products work on 16 activations (A: 16 rows of 32 int8) against one 32-element block of 16 weight rows
// (B: 8 rows of 64 bytes, each 4 consecutive elements of every weight row, which is how a chunk of the packed
// layouts is laid out), giving the block's exact int32 sums for 16 activations x 16 rows. The formats scale
// per block, so each block's sums are stored and finished with AVX-512, in block order, as the spec orders them.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <vector>

#include "qforge/kernels/matvec.h"

#define QF_AMX __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c,amx-tile,amx-int8")))

// The tile instructions are opaque asm to the compiler, which therefore does not know that tile loads read
// what ordinary stores wrote, nor that tile stores write what ordinary loads then read. A full compiler
// barrier orders the two sides where no accumulators are live; in the block loops the tile stores name the
// buffer they write instead (a full barrier there kept the accumulators in memory).
#define QF_TILE_BARRIER() __asm__ __volatile__("" ::: "memory")

namespace qforge::amx {

inline constexpr int kTile = 16;         // activations per tile, and weight rows per group
inline constexpr int kBlockBytes = 512;  // one block of 16 activations or 16 weight rows: 16 x 32 int8
// Below this many activations the AVX-512 VNNI kernels are used: a tile does the work of 16 activations
// whatever the batch, and the 4-bit formats' unpacking is paid per call. Measured with `qforge bench -p P -n 1`
// on the 1.1B model, 1 thread, QFORGE_KERNELS=avx512 against AMX (tok/s): Q4_0 P=8 102 vs 82, P=12 119 vs
// 120; Q4_K_M P=8 71 vs 60, P=12 83 vs 86, P=16 93 vs 119; Q8_0 (no unpacking) P=8 59 vs 79.
inline constexpr int kMinBatchUnpacked = 12;  // Q4_0, Q4_K, Q6_K
inline constexpr int kMinBatchInPlace = 4;    // Q8_0

// Tiles: 0 and 1 the int32 sums (16 x 16), 2 and 3 activations (16 rows of kDepth bytes), 4 and 5 weights
// (kDepth / 4 rows of 64 bytes). kDepth is the elements per tile product: 32 (the blocks and Q4_K's sub-blocks)
// or 16 (Q6_K's sub-blocks).
template <int kDepth>
struct alignas(64) TileConfig {
  static_assert(kDepth == 16 || kDepth == 32);
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {64, 64, kDepth, kDepth, 64, 64};
  uint8_t rows[16] = {16, 16, 16, 16, kDepth / 4, kDepth / 4};
};

template <int kDepth>
inline constexpr int kDepthBytes = kTile * kDepth;  // one sub-block of 16 activations or 16 weight rows

// A kernel call's tile configuration: loads kDepth's on construction and puts back what the thread had before
// on destruction. Another library in the process may use the tiles in the same thread and configure them only
// once per thread (ggml's AMX kernels do: with llama.cpp run in-process by the tests, leaving our shapes behind
// made its next tile product an illegal instruction).
template <int kDepth>
class ScopedTileConfig {
 public:
  QF_AMX ScopedTileConfig() {
    _tile_storeconfig(&saved_);
    static const TileConfig<kDepth> config;
    _tile_loadconfig(&config);
  }
  QF_AMX ~ScopedTileConfig() {
    if (saved_.palette == 0) {
      _tile_release();  // it had none
    } else {
      _tile_loadconfig(&saved_);
    }
  }
  ScopedTileConfig(const ScopedTileConfig&) = delete;
  ScopedTileConfig& operator=(const ScopedTileConfig&) = delete;

 private:
  TileConfig<kDepth> saved_;  // the layout is the architecture's; only the fields read back matter
};

using Sums = int32_t[kTile * kTile];  // [activation][weight row]

// The sums of block 0 (tile 0) and, if `two`, of block 1 (tile 1): activations `a` and weights `w` point at
// block 0, block 1 follows kDepthBytes later. kSignedWeights: int8 weights (TDPBSSD), else uint8 (TDPBSUD).
template <bool kSignedWeights, int kDepth = 32>
QF_AMX inline void TileProducts(const int8_t* a, const int8_t* w, bool two) {
  _tile_zero(0);
  _tile_loadd(2, a, kDepth);
  _tile_loadd(4, w, 64);
  if constexpr (kSignedWeights) {
    _tile_dpbssd(0, 2, 4);
  } else {
    _tile_dpbsud(0, 2, 4);
  }
  if (two) {
    _tile_zero(1);
    _tile_loadd(3, a + kDepthBytes<kDepth>, kDepth);
    _tile_loadd(5, w + kDepthBytes<kDepth>, 64);
    if constexpr (kSignedWeights) {
      _tile_dpbssd(1, 3, 5);
    } else {
      _tile_dpbsud(1, 3, 5);
    }
  }
}

QF_AMX inline void StoreSums(bool two, Sums& s0, Sums& s1) {
  _tile_stored(0, s0, 64);
  __asm__ __volatile__("" : "+m"(s0));  // written by the tile store
  if (two) {
    _tile_stored(1, s1, 64);
    __asm__ __volatile__("" : "+m"(s1));
  }
}

// The tile work per block took ~16 ns in the kernel against ~8 ns in a loop on L1-resident tiles: the bytes a
// few steps ahead are prefetched into L1 (Q8_0 matmul64 3.17 -> 2.95 ms in one A/B; within this VM's noise in
// others).
inline constexpr int64_t kAheadBlocks = 4;
QF_AMX inline void PrefetchBytes(const int8_t* p, int bytes) {
  for (int o = 0; o < bytes; o += 64) _mm_prefetch(reinterpret_cast<const char*>(p + o), _MM_HINT_T0);
}
QF_AMX inline void Prefetch2Blocks(const int8_t* p) { PrefetchBytes(p, 2 * kBlockBytes); }

// Whether `serials` (a thread's record of the batch it rearranged last) names exactly this batch; if not,
// records this one (empty if some activation has no serial: then it cannot be recognised later).
inline bool SameBatch(const PreparedActivation* acts, int n, int64_t cols, int64_t* held_cols,
                      std::vector<uint64_t>* serials) {
  bool same = *held_cols == cols && serials->size() == static_cast<size_t>(n);
  for (int t = 0; same && t < n; ++t) same = acts[t].serial != 0 && acts[t].serial == (*serials)[t];
  if (same) return true;
  *held_cols = cols;
  serials->resize(n);
  for (int t = 0; t < n; ++t) {
    (*serials)[t] = acts[t].serial;
    if (acts[t].serial == 0) {
      serials->clear();
      break;
    }
  }
  return false;
}

}  // namespace qforge::amx
