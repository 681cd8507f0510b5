// Per-type row dot products of the scalar reference (dot_scalar.cc) and the float "combine" steps shared
// with the SIMD kernels. The spec for a quantized type is: per block an exact int32 dot of weight and
// activation integers, then float arithmetic in block order written out below, one rounding per operation.
// Because the SIMD kernels call the very same combine functions with the same exact integers, they are
// bit-exact with the scalar reference.
#pragma once

#include <cstddef>
#include <cstdint>

#include "activation_quant.h"
#include "qforge/formats/ggml_type.h"

namespace qforge {

// Forces v to be rounded to float here, so the compiler cannot fuse the multiply that produced it into a
// following add (FMA contraction would change the result in the target("fma") SIMD functions only).
inline float Keep(float v) {
#if defined(__x86_64__) || defined(__i386__)
  __asm__("" : "+x"(v));
#else
  __asm__("" : "+r"(v));
#endif
  return v;
}

// Block combiners, the float part of ggml's generic vec_dot_* (same operand order as ggml's code).
// Q4_0: sumf += sumi * dx * dy.
inline float CombineQ4_0(float sumf, int32_t sumi, float dx, float dy) {
  return sumf + Keep(Keep(static_cast<float>(sumi) * dx) * dy);
}
// Q8_0 (and IQ4_NL with d = dy * dx): sumf += sumi * (dx * dy).
inline float CombineQ8_0(float sumf, int32_t sumi, float dx, float dy) {
  return sumf + Keep(static_cast<float>(sumi) * Keep(dx * dy));
}
// Q5_0: sumf += (dx * dy) * sumi.
inline float CombineQ5_0(float sumf, int32_t sumi, float dx, float dy) {
  return sumf + Keep(Keep(dx * dy) * static_cast<float>(sumi));
}
// Q4_1, Q5_1 (Q8_1 activations carry s = d * sum(q)): sumf += (dx * dy) * sumi + mx * sy.
inline float CombineQ4_1(float sumf, int32_t sumi, float dx, float dy, float mx, float sy) {
  return sumf + (Keep(Keep(dx * dy) * static_cast<float>(sumi)) + Keep(mx * sy));
}
// k-quants and IQ4_XS, per 256-element super-block: sumf += (dy * dx) * isum - (dy * dmin) * summs, where
// isum = sum over sub-blocks of scale * (integer dot) and summs = sum of min * bsums (0 for types without
// mins). Both are exact int32 (|isum| < 2^31 for every type: worst is Q6_K, 16 * 127 * 32 * 16 * 127 ≈ 1.3e8).
inline float CombineK(float sumf, int32_t isum, int32_t summs, float dx, float dmin, float dy) {
  const float dall = Keep(dy * dx);
  const float dm = Keep(dy * dmin);
  return sumf + (Keep(dall * static_cast<float>(isum)) - Keep(dm * static_cast<float>(summs)));
}

// One row: returns sum_c W[c] * x[c] under the spec. w points at the row's blocks; act at the prepared
// activation bytes (ActQ8_0 / ActQ8_1 / ActQ8_K blocks, or fp16/bf16 values); n = cols.
float DotQ4_0(const uint8_t* w, const uint8_t* act, int64_t n);
float DotQ4_1(const uint8_t* w, const uint8_t* act, int64_t n);
float DotQ5_0(const uint8_t* w, const uint8_t* act, int64_t n);
float DotQ5_1(const uint8_t* w, const uint8_t* act, int64_t n);
float DotQ8_0(const uint8_t* w, const uint8_t* act, int64_t n);
float DotIQ4_NL(const uint8_t* w, const uint8_t* act, int64_t n);
float DotQ2_K(const uint8_t* w, const uint8_t* act, int64_t n);
float DotQ3_K(const uint8_t* w, const uint8_t* act, int64_t n);
float DotQ4_K(const uint8_t* w, const uint8_t* act, int64_t n);
float DotQ5_K(const uint8_t* w, const uint8_t* act, int64_t n);
float DotQ6_K(const uint8_t* w, const uint8_t* act, int64_t n);
float DotIQ4_XS(const uint8_t* w, const uint8_t* act, int64_t n);
// Float types, as ggml's generic ggml_vec_dot_f16/bf16/f32: products in float, sum in double.
float DotF16(const uint8_t* w, const uint8_t* act, int64_t n);
float DotBF16(const uint8_t* w, const uint8_t* act, int64_t n);
float DotF32(const uint8_t* w, const uint8_t* x, int64_t n);  // x = the float activations

// Unpacked 6-bit scales and mins of Q4_K / Q5_K sub-blocks (k_blocks.h layout).
void UnpackScalesMinsK4(const uint8_t scales[12], uint8_t sc[8], uint8_t m[8]);
// Unpacked signed scales (sc - 32) of the 16 Q3_K sub-blocks.
void UnpackScalesQ3_K(const uint8_t scales[12], int8_t sc[16]);

// The "exact" float reference used only by tests to bound the error of the spec: decodes each row with the
// quant registry and takes a double-accumulated dot with the unrounded float activations.
void ExactMatVec(GgmlType type, const uint8_t* w, size_t row_bytes, const float* x, int64_t cols, float* y,
                 int64_t rows);

}  // namespace qforge
