// IEEE binary16 and bfloat16 <-> float32, round-to-nearest-even, bit-exact with the usual definitions
// (subnormals kept, Inf/NaN preserved, NaN stays NaN — quiet bit set, payload's top bits kept).
#pragma once

#include <cstdint>
#include <cstring>

namespace qforge {

inline uint32_t FloatBits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }
inline float BitsFloat(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }

float F16ToF32(uint16_t h);
uint16_t F32ToF16(float f);

inline float BF16ToF32(uint16_t h) { return BitsFloat(static_cast<uint32_t>(h) << 16); }
uint16_t F32ToBF16(float f);

// Bulk helpers (rows of tensors).
void F16ToF32Row(const uint16_t* src, float* dst, size_t n);
void F32ToF16Row(const float* src, uint16_t* dst, size_t n);
void BF16ToF32Row(const uint16_t* src, float* dst, size_t n);
void F32ToBF16Row(const float* src, uint16_t* dst, size_t n);

}  // namespace qforge
