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

// Floats of scratch memory AttendKvHead needs for these sizes.
size_t AttentionScratchFloats(int group, int head_dim, int n_pos);

// Dispatched: AVX-512 (F16C conversions in registers, a polynomial exp) where the CPU has it and head_dim is a
// multiple of 16 up to 128; otherwise the scalar reference.
void AttendKvHead(const KvHeadAttention& a, float* scratch);

// The scalar reference: each score a dot product in a fixed order (16 running sums, then a pairwise reduction),
// a std::exp softmax summed in double. The AVX-512 path agrees with it to within F16 rounding of the weights.
void AttendKvHeadScalar(const KvHeadAttention& a, float* scratch);

}  // namespace qforge
