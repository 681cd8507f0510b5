// Block structs of ggml's k-quants (Q2_K … Q6_K): 256-element super-blocks split into 16 or 8 sub-blocks,
// each sub-block with its own small integer scale (and min) which are themselves quantized against one or
// two fp16 super-block scales. Field names and byte order are ggml's (ggml/src/ggml-common.h) so a reviewer
// can hold them against the spec; fp16 fields hold raw IEEE binary16 bits (core/fp16.h converts).
#pragma once

#include <cstdint>

namespace qforge {

inline constexpr int kKSuper = 256;      // elements per super-block (ggml QK_K; blocks.h has its own kQK_K)
inline constexpr int kKScaleSize = 12;   // bytes of the packed 6-bit scales/mins of Q3_K, Q4_K, Q5_K

// Q2_K: 16 sub-blocks of 16. x = d·(scales[j] & 15)·q − dmin·(scales[j] >> 4), q ∈ [0, 3].
// Bytes: scales[16] (low nibble scale, high nibble min, sub-block j = elements 16j..16j+15),
//        qs[64] (2-bit q: element 128h + 32k + l sits in qs[32h + l] at bits 2k..2k+1),
//        d, dmin (fp16). 84 bytes per 256 weights = 2.625 bits/weight.
struct block_q2_K {
  uint8_t scales[kKSuper / 16];
  uint8_t qs[kKSuper / 4];
  uint16_t d;
  uint16_t dmin;
};
static_assert(sizeof(block_q2_K) == 84, "block_q2_K must be 84 bytes");

// Q3_K: 16 sub-blocks of 16. x = d·(sc_j − 32)·(q − 4), q ∈ [0, 7], sc_j ∈ [0, 63].
// Bytes: hmask[32] (bit 2 of q for element e is bit e/32 of hmask[e % 32]),
//        qs[64] (low 2 bits of q, same order as Q2_K),
//        scales[12] (sc_j low nibble: j < 8 in scales[j] bits 0..3, j ≥ 8 in scales[j−8] bits 4..7;
//                    sc_j high 2 bits in scales[8 + j%4] at bits 2·(j/4)),
//        d (fp16). 110 bytes per 256 weights = 3.4375 bits/weight.
struct block_q3_K {
  uint8_t hmask[kKSuper / 8];
  uint8_t qs[kKSuper / 4];
  uint8_t scales[kKScaleSize];
  uint16_t d;
};
static_assert(sizeof(block_q3_K) == 110, "block_q3_K must be 110 bytes");

// Q4_K: 8 sub-blocks of 32. x = d·sc_j·q − dmin·m_j, q ∈ [0, 15], sc_j, m_j ∈ [0, 63].
// Bytes: d, dmin (fp16),
//        scales[12] (j < 4: sc_j = scales[j] & 63, m_j = scales[j+4] & 63;
//                    j ≥ 4: sc_j = (scales[j+4] & 15) | (scales[j−4] >> 6) << 4,
//                           m_j  = (scales[j+4] >> 4) | (scales[j] >> 6) << 4),
//        qs[128] (element 64c + l: low nibble of qs[32c + l]; element 64c + 32 + l: its high nibble).
// 144 bytes per 256 weights = 4.5 bits/weight.
struct block_q4_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[kKScaleSize];
  uint8_t qs[kKSuper / 2];
};
static_assert(sizeof(block_q4_K) == 144, "block_q4_K must be 144 bytes");

// Q5_K: Q4_K with a fifth bit. x = d·sc_j·q − dmin·m_j, q ∈ [0, 31].
// Bytes: d, dmin, scales[12] as Q4_K; qh[32] (bit 4 of q for element e is bit e/32 of qh[e % 32]);
//        qs[128] low 4 bits as Q4_K. 176 bytes per 256 weights = 5.5 bits/weight.
struct block_q5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[kKScaleSize];
  uint8_t qh[kKSuper / 8];
  uint8_t qs[kKSuper / 2];
};
static_assert(sizeof(block_q5_K) == 176, "block_q5_K must be 176 bytes");

// Q6_K: 16 sub-blocks of 16. x = d·scales[j]·(q − 32), q ∈ [0, 63], scales[j] ∈ [−128, 127].
// Bytes: ql[128] (low 4 bits: element 128h + l → ql[64h + l] low, +32 → ql[64h + 32 + l] low,
//                 +64 → ql[64h + l] high, +96 → ql[64h + 32 + l] high),
//        qh[64] (high 2 bits: element 128h + 32k + l → qh[32h + l] bits 2k..2k+1),
//        scales[16] (int8), d (fp16). 210 bytes per 256 weights = 6.5625 bits/weight.
struct block_q6_K {
  uint8_t ql[kKSuper / 2];
  uint8_t qh[kKSuper / 4];
  int8_t scales[kKSuper / 16];
  uint16_t d;
};
static_assert(sizeof(block_q6_K) == 210, "block_q6_K must be 210 bytes");

}  // namespace qforge
