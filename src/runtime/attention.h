// Attention of one token over one KV head of a layer's F16 cache: the query heads that share that KV head
// (grouped-query attention) are done together, so each cached key and value row is read and converted once for
// all of them. The runtime splits a layer's attention into such items and runs them in parallel.
//
// The arithmetic follows llama.cpp's CPU attention in precision: the query is rounded to F16 before its dot
// products with the F16 keys, and the softmax weights before their product with the F16 values; sums are F32.
#pragma once

#include <cstddef>
#include <cstdint>

namespace qforge {

struct KvHeadAttention {
  const float* q;       // the group's query heads, group * head_dim values (head g at q + g * head_dim)
  const uint16_t* k;    // position p's key for this KV head at k + p * stride (F16 bits)
  const uint16_t* v;    // position p's value, likewise
  size_t stride;        // cache elements from one position to the next
  int head_dim;
  int group;            // query heads sharing this KV head
  int n_pos;            // attends to positions 0 .. n_pos - 1 (at least 1)
  float scale;          // multiplies each score before the softmax
  float* out;           // group * head_dim results, laid out as q
};

// Floats of scratch memory the attention paths need for these sizes.
size_t AttentionScratchFloats(int group, int head_dim, int n_pos);

using AttendFn = void (*)(const KvHeadAttention& a, float* scratch);

// The scalar reference: each score a dot product in a fixed order (16 running sums, then a pairwise reduction),
// a std::exp softmax summed in double. The SIMD paths agree with it to within F16 rounding of the weights.
void AttendKvHeadScalar(const KvHeadAttention& a, float* scratch);

// The SIMD paths: F16 rows converted in registers, a polynomial exp (simd_exp_inl.h). AVX-512 takes head sizes
// that are multiples of 16 up to 128, AVX2 (with FMA and F16C) multiples of 8. AttentionPath returns the path
// for `isa`, or null where this CPU lacks the instructions or the path does not take `head_dim`.
enum class AttentionIsa { kAvx2, kAvx512 };
AttendFn AttentionPath(AttentionIsa isa, int head_dim);

// Dispatched: the widest SIMD path this CPU and head size allow, else the scalar reference.
void AttendKvHead(const KvHeadAttention& a, float* scratch);

}  // namespace qforge
