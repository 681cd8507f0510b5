// How the runtime rounds activations before a matrix-vector product, exactly like ggml's CPU backend: each
// weight type has a "vec_dot_type" (Q8_0, Q8_1, Q8_K, F16, BF16 or F32) and the activations are converted into
// it once per product, then every row is an integer (or low-precision) dot against those bytes. The formats
// here are byte-identical with ggml's block_q8_0 / block_q8_1 / block_q8_K (ggml/src/ggml-common.h), and the
// scalar quantizers are the specification; SIMD versions must give the same bytes. Q8_0/Q8_1 follow ggml's x86
// CPU quantize_row_q8_0/q8_1 (what llama.cpp runs), Q8_K follows quantize_row_q8_K_ref (which x86 also runs).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "qforge/formats/ggml_type.h"

namespace qforge {

// Q8_0 activations: x ≈ d * q, d = amax/127 (stored fp16), q = rint(x * (127/amax)) (ties to even), 34 bytes / 32.
// (ggml's portable quantize_row_q8_0_ref uses x * (1/d) and roundf instead: rare one-step differences.)
struct ActQ8_0 {
  uint16_t d;      // fp16
  int8_t qs[32];
};
static_assert(sizeof(ActQ8_0) == 34);

// Q8_1: Q8_0 plus s = fp16(d * sum(q)), so offset-carrying weights (Q4_1, Q5_1) need no extra pass. 36 bytes.
struct ActQ8_1 {
  uint16_t d;      // fp16
  uint16_t s;      // fp16 of d * sum_j qs[j]
  int8_t qs[32];
};
static_assert(sizeof(ActQ8_1) == 36);

// Q8_K: 256 elements, x ≈ d * q with a float d = max / -127 where max is the signed value of largest
// magnitude (first one wins), q = min(127, rint(x * -127 / max)) (ties to even, like ggml's nearest_int),
// bsums[j] = sum of q over elements 16j..16j+15 (k-quants use them for the min/offset terms). 292 bytes.
struct ActQ8_K {
  float d;
  int8_t qs[256];
  int16_t bsums[16];
};
static_assert(sizeof(ActQ8_K) == 292);

enum class ActFormat { kF32, kF16, kBF16, kQ8_0, kQ8_1, kQ8_K };

// ggml's vec_dot_type for a weight type (kF32 for F32 and for types without a quantized dot).
ActFormat VecDotFormat(GgmlType weight_type);
// Elements per activation block (1 for the float formats) and bytes per block.
int ActBlockElems(ActFormat f);
size_t ActBlockBytes(ActFormat f);
// Bytes needed for n activations (n a multiple of ActBlockElems).
size_t ActBytes(ActFormat f, int64_t n);

// Scalar reference quantizers (the spec). n must be a multiple of the block size.
void QuantizeActQ8_0(const float* x, ActQ8_0* y, int64_t n);
void QuantizeActQ8_1(const float* x, ActQ8_1* y, int64_t n);
void QuantizeActQ8_K(const float* x, ActQ8_K* y, int64_t n);
// Round to F16 / BF16 (round to nearest even), as ggml_cpu_fp32_to_fp16 / ggml_cpu_fp32_to_bf16.
void QuantizeActF16(const float* x, uint16_t* y, int64_t n);
void QuantizeActBF16(const float* x, uint16_t* y, int64_t n);

// Dispatches on f (kF32: nothing to do). `out` must hold ActBytes(f, n) bytes.
void QuantizeAct(ActFormat f, const float* x, uint8_t* out, int64_t n);

// A fresh PreparedActivation::serial (never 0), for the prepare() of kernels whose batch products recognise
// activations they have already rearranged.
inline uint64_t NextActivationSerial() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace qforge
