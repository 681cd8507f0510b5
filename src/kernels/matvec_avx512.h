// The AVX-512 (F, BW, VL, VNNI, VBMI) kernel tables. Two files, one per family, like the AVX2 ones:
// matvec_avx512.cc (legacy 32-element blocks: Q4_0, Q5_0, Q8_0, IQ4_NL, ...) and matvec_avx512_k.cc
// (k-quants). Each returns nullptr for a type it has no kernel for; matvec_simd.cc then falls back to AVX2.
// Callers must check CpuHasAvx512Vnni() first.
#pragma once

#include "qforge/kernels/matvec.h"

namespace qforge {

const MatVecKernel* Avx512LegacyMatVecKernel(GgmlType type);
const MatVecKernel* Avx512KMatVecKernel(GgmlType type);

}  // namespace qforge
