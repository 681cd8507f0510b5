// Byte layouts of the 32-element block types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL) and of IQ4_XS, with
// ggml's field names (ggml/src/ggml-common.h) so they can be held against the spec. All scales are IEEE
// fp16 bit patterns stored little-endian. Nibble order everywhere: qs[j] low nibble = element j, high
// nibble = element j + 16 of the 32-element (sub-)block. K-quant blocks live in k_blocks.h.
#pragma once

#include <cstdint>

namespace qforge {

inline constexpr int kQK32 = 32;    // elements per legacy / IQ4_NL block
inline constexpr int kQK_K = 256;   // elements per IQ4_XS super-block

// Q4_0: x = d * (q - 8), q in 0..15. 2 + 16 = 18 bytes / 32 = 4.5 bits per weight.
struct BlockQ4_0 {
  uint16_t d;       // fp16 scale
  uint8_t qs[16];   // nibbles: low = element j, high = element j + 16
};
static_assert(sizeof(BlockQ4_0) == 18);

// Q4_1: x = d * q + m, q in 0..15. 2 + 2 + 16 = 20 bytes / 32 = 5.0 bits per weight.
struct BlockQ4_1 {
  uint16_t d;       // fp16 scale
  uint16_t m;       // fp16 offset (the value of q = 0)
  uint8_t qs[16];   // nibbles as in Q4_0
};
static_assert(sizeof(BlockQ4_1) == 20);

// Q5_0: x = d * (q - 16), q in 0..31; low 4 bits in qs (Q4_0 order), 5th bit of element j is bit j of
// the little-endian u32 qh. 2 + 4 + 16 = 22 bytes / 32 = 5.5 bits per weight. No padding: qh is bytes.
struct BlockQ5_0 {
  uint16_t d;       // fp16 scale
  uint8_t qh[4];    // u32 (LE) of 5th bits, bit j = element j
  uint8_t qs[16];   // low nibbles as in Q4_0
};
static_assert(sizeof(BlockQ5_0) == 22);

// Q5_1: x = d * q + m, q in 0..31; bits as in Q5_0. 2 + 2 + 4 + 16 = 24 bytes / 32 = 6.0 bits per weight.
struct BlockQ5_1 {
  uint16_t d;       // fp16 scale
  uint16_t m;       // fp16 offset
  uint8_t qh[4];    // u32 (LE) of 5th bits
  uint8_t qs[16];   // low nibbles as in Q4_0
};
static_assert(sizeof(BlockQ5_1) == 24);

// Q8_0: x = d * q, q an int8 (ggml's encoder uses -127..127; the decoder accepts -128).
// 2 + 32 = 34 bytes / 32 = 8.5 bits per weight.
struct BlockQ8_0 {
  uint16_t d;       // fp16 scale
  int8_t qs[32];    // element j = qs[j]
};
static_assert(sizeof(BlockQ8_0) == 34);

// The 16-level non-linear grid of IQ4_NL / IQ4_XS (ggml's kvalues_iq4nl), ascending.
inline constexpr int8_t kIq4nlValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                            1,    13,   25,  38,  53,  69,  89,  113};

// IQ4_NL: x = d * kIq4nlValues[q], q in 0..15, nibbles as in Q4_0. 18 bytes / 32 = 4.5 bits per weight.
struct BlockIQ4_NL {
  uint16_t d;       // fp16 scale
  uint8_t qs[16];   // nibbles: low = element j, high = element j + 16
};
static_assert(sizeof(BlockIQ4_NL) == 18);

// IQ4_XS: 256 elements in 8 sub-blocks of 32. Sub-block ib has a 6-bit scale
// ls = (scales_l[ib/2] >> 4*(ib%2) & 0xf) | ((scales_h >> 2*ib & 3) << 4), and
// x = (d * (ls - 32)) * kIq4nlValues[q], q's nibbles as in IQ4_NL per sub-block (qs[16*ib ..]).
// 2 + 2 + 4 + 128 = 136 bytes / 256 = 4.25 bits per weight.
struct BlockIQ4_XS {
  uint16_t d;           // fp16 super-block scale
  uint16_t scales_h;    // high 2 bits of the 8 sub-block scales, sub-block ib at bits 2*ib
  uint8_t scales_l[4];  // low 4 bits of the sub-block scales, two per byte (even ib in the low nibble)
  uint8_t qs[128];      // 8 x 16 bytes of nibbles
};
static_assert(sizeof(BlockIQ4_XS) == 136);

}  // namespace qforge
