// The AVX2 (+FMA, F16C) kernel table (matvec_avx2.cc). Callers must check the CPU first (matvec_simd.cc).
#pragma once

#include <cstdint>

#include "activation_quant.h"
#include "qforge/kernels/matvec.h"

namespace qforge {

// The AVX2 kernel for `type`, or nullptr if there is none (then the scalar spec runs).
const MatVecKernel* Avx2MatVecKernel(GgmlType type);
// True if the CPU runs the AVX2 table (AVX2 + FMA + F16C).
bool CpuHasAvx2();
// The AVX2 activation quantizer for f (same bytes as QuantizeAct); exposed for kernels_test.cc.
void QuantizeActAvx2(ActFormat f, const float* x, uint8_t* out, int64_t n);

}  // namespace qforge
