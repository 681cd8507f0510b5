// Shared between the k-quant decoders, encoders and the registry rows: the packing of each block format
// to and from plain integer arrays, and the type-independent search (KSpec + EncodeKBlock) that decides
// the integers. Packing lives here once so encode and decode cannot disagree on a bit position.
#pragma once

#include <cstdint>

#include "qforge/quant/k_blocks.h"

namespace qforge::kquant {

// What distinguishes one k-quant type from another, as far as choosing values goes.
//  affine:    x̂ = (d·ls_j)·L − (dmin·lm_j), L ∈ [lmin, lmax], ls_j, lm_j ∈ [smin, smax]
//  symmetric: x̂ = (d·ls_j)·L,               L ∈ [lmin, lmax], ls_j ∈ [smin, smax]  (dmin unused)
struct KSpec {
  int n_sub;    // sub-blocks per super-block
  int sub_len;  // elements per sub-block
  bool affine;
  int lmin, lmax;  // quant levels
  int smin, smax;  // integer sub-scales (and mins, for affine types)
  friend constexpr bool operator==(const KSpec&, const KSpec&) = default;
};
inline constexpr KSpec kSpecQ2K{16, 16, true, 0, 3, 0, 15};
inline constexpr KSpec kSpecQ3K{16, 16, false, -4, 3, -32, 31};
inline constexpr KSpec kSpecQ4K{8, 32, true, 0, 15, 0, 63};
inline constexpr KSpec kSpecQ5K{8, 32, true, 0, 31, 0, 63};
inline constexpr KSpec kSpecQ6K{16, 16, false, -32, 31, -128, 127};

// One super-block's decided integers, before packing. L holds the level as the formula uses it
// (Q3_K: −4..3, Q6_K: −32..31, affine types: 0..lmax).
struct KValues {
  uint16_t d = 0, dmin = 0;  // fp16 bits
  int ls[16] = {};
  int lm[16] = {};
  int8_t L[kKSuper] = {};
};

// Chooses KValues for 256 floats x with per-element weights w (all > 0 somewhere, none negative/NaN)
// minimising sum w·(x − x̂)², where x̂ is computed exactly as the decoder does. Deterministic. The search
// is compiled per type: spec must be one of the five kSpecQ*K above.
void EncodeKBlock(const KSpec& spec, const float* x, const float* w, KValues* out);

// Packing: KValues <-> block bytes (the inverse pairs are tested to round-trip).
void PackQ2K(const KValues& v, block_q2_K* b);
void PackQ3K(const KValues& v, block_q3_K* b);
void PackQ4K(const KValues& v, block_q4_K* b);
void PackQ5K(const KValues& v, block_q5_K* b);
void PackQ6K(const KValues& v, block_q6_K* b);
void UnpackQ2K(const block_q2_K& b, KValues* v);
void UnpackQ3K(const block_q3_K& b, KValues* v);
void UnpackQ4K(const block_q4_K& b, KValues* v);
void UnpackQ5K(const block_q5_K& b, KValues* v);
void UnpackQ6K(const block_q6_K& b, KValues* v);

// Registry functions (signatures of EncodeRowFn / DecodeRowFn).
void DecodeRowQ2K(const uint8_t* in, float* y, int64_t n);
void DecodeRowQ3K(const uint8_t* in, float* y, int64_t n);
void DecodeRowQ4K(const uint8_t* in, float* y, int64_t n);
void DecodeRowQ5K(const uint8_t* in, float* y, int64_t n);
void DecodeRowQ6K(const uint8_t* in, float* y, int64_t n);
void EncodeRowQ2K(const float* x, uint8_t* out, int64_t n, const float* importance);
void EncodeRowQ3K(const float* x, uint8_t* out, int64_t n, const float* importance);
void EncodeRowQ4K(const float* x, uint8_t* out, int64_t n, const float* importance);
void EncodeRowQ5K(const float* x, uint8_t* out, int64_t n, const float* importance);
void EncodeRowQ6K(const float* x, uint8_t* out, int64_t n, const float* importance);

}  // namespace qforge::kquant
