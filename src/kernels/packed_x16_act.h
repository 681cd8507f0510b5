// What the x16 kernels' prepare() (packed_x16_avx512.cc) appends after the standard ActQ8_0 bytes, per block b:
// the 32 activation bytes (contiguous over all blocks, so a 4-element group is one broadcast load and a block
// one row of an AMX tile), minus their sum, and the scale as a float. Shared by the AVX-512 and AMX kernels.
#pragma once

#include <cstddef>
#include <cstdint>

#include "activation_quant.h"
#include "qforge/kernels/matvec.h"

namespace qforge {

struct X16ActView {
  const int8_t* qs;     // 32 * nb bytes
  const int32_t* nsum;  // nb values: -sum of the block's 32 bytes
  const float* d;       // nb values: the block's fp16 scale as a float
};

inline size_t X16ActExtraOffset(int64_t nb) { return (static_cast<size_t>(nb) * sizeof(ActQ8_0) + 3) & ~size_t{3}; }
inline size_t X16ActBytes(int64_t nb) { return X16ActExtraOffset(nb) + 40 * static_cast<size_t>(nb); }

inline X16ActView MakeX16ActView(const PreparedActivation& act) {
  const int64_t nb = act.cols / 32;
  const uint8_t* extra = act.quantized.data() + X16ActExtraOffset(nb);
  return {reinterpret_cast<const int8_t*>(extra), reinterpret_cast<const int32_t*>(extra + 32 * nb),
          reinterpret_cast<const float*>(extra + 36 * nb)};
}

}  // namespace qforge
