// The per-element view of an encoded GGUF block that GPTQ needs: once a block's scales (and mins) are fixed,
// element j of the block can only take the values scale_j * map(level) + offset_j for a small range of
// integer levels (map(level) = level - zero for the linear types, kIq4nlValues[level] for IQ4_NL/IQ4_XS).
// GetElementGrid reads scale_j / offset_j out of the block bytes; GetLevel / SetLevel read and write
// element j's level in the bytes (the per-type bit packing of blocks.h / k_blocks.h). Values are computed in
// the same float operations as the registry decoder, so ElementGrid::Value(GetLevel(...)) is bit-equal to
// what decode() produces for that element (tested for every supported type).
#pragma once

#include <cstdint>

#include "qforge/formats/ggml_type.h"

namespace qforge {

struct ElementGrid {
  float scale = 0.0f;
  float offset = 0.0f;           // added after scaling (k-quant affine types store it as -dmin*m)
  int zero = 0;                  // linear types: value = scale * (level - zero) + offset
  int lo = 0, hi = 0;            // valid levels for an encoder (inclusive)
  const int8_t* table = nullptr; // non-null: value = scale * table[level] + offset

  float Value(int level) const {
    const float m = table ? static_cast<float>(table[level]) : static_cast<float>(level - zero);
    const float p = scale * m;  // a separate statement: no FMA contraction, same rounding as the decoder
    return p + offset;
  }
  // The level in [lo, hi] whose Value is closest to w (ties: the lower level). `fallback` when every
  // level has the same value (scale 0).
  int Nearest(float w, int fallback) const;
};

// True for the types below: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K..Q6_K, IQ4_NL, IQ4_XS.
bool BlockGridSupports(GgmlType type);

// `block` points at one encoded block of `type`; element is in [0, block_size).
ElementGrid GetElementGrid(GgmlType type, const uint8_t* block, int element);
int GetLevel(GgmlType type, const uint8_t* block, int element);
// level must be in the type's storable range (the ElementGrid's [lo, hi]; Q8_0 also accepts -128).
void SetLevel(GgmlType type, uint8_t* block, int element, int level);

}  // namespace qforge
