// Per-type row dot products of the scalar reference (dot_scalar.cc) and the float "combine" steps shared
// with the SIMD kernels. The spec for a quantized type is: exact int32 dots of weight and activation integers,
// then float arithmetic written out below, one rounding per operation. Because the SIMD kernels do the very
// same float operations on the same exact integers, they are bit-exact with the scalar reference.
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

// Legacy types without a min (Q4_0, Q5_0, Q8_0, IQ4_NL): "lane-strided accumulation". ggml's generic code
// adds each block's float result into one running sum, which forces a SIMD kernel to reduce every block's
// integer lanes horizontally before the float step (a shuffle chain per block and row, the dominant cost of
// decode). Instead the spec keeps the lanes that SIMD integer dots produce anyway:
//   acc[0..15] = 0. Block i: for lane l in 0..7, isum_l = sum_{k<4} w[4l+k] * a[4l+k] (exact int32, w the
//   block's weight integers in element order, a the activation's int8), d_i = float(dw) * float(da) (one
//   rounding), acc[8*(i%2) + l] = fma(float(isum_l), d_i, acc[8*(i%2) + l]) (one rounding; |isum_l| < 2^24 so
//   the conversion is exact).
//   Result: s_l = acc[l] + acc[8+l] (l < 8), t_l = s_l + s_{l+4} (l < 4), (t_0 + t_2) + (t_1 + t_3).
// Lane l of an 8 x int32 vector from maddubs+madd (AVX2) or vpdpbusd (VNNI) is exactly elements 4l..4l+3, so a
// 512-bit register holding blocks i, i+1 is acc[0..15] and an AVX2 kernel keeps two 8-float accumulators:
// every ISA then does the same float operations in the same order per lane and stays bit-exact with this
// scalar version. The result differs from ggml's sequential sum only by float reordering (kernels_ggml_test.cc).
class LaneStridedSum {
 public:
  // Adds block `block` with weight integers w[32] and activation integers a[32], d = dw * da.
  void AddBlock(int64_t block, const int* w, const int8_t* a, float dw, float da);
  float Result() const;

 private:
  float acc_[16] = {};
};

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
