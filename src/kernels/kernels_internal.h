// Internal pieces shared by the kernel files: the hook between dispatch and the SIMD kernel files, and the
// scalar prepare() every reference kernel uses.
#pragma once

#include "activation_quant.h"
#include "qforge/kernels/matvec.h"

namespace qforge {

// The fastest SIMD kernel for `type` on this CPU, or nullptr (then the scalar reference is used).
const MatVecKernel* BestSimdKernel(GgmlType type);

// Whether packed layouts may use their AMX batch kernels: the CPU has AMX-INT8 and QFORGE_KERNELS is not
// "avx512" (which keeps the AVX-512 VNNI kernels, for comparisons) or "scalar".
bool AmxEnabled();

// prepare() of the scalar specs: the activations rounded to format F by the scalar quantizer
// (activation_quant.h), nothing else. Reference kernels on stored rows and on packed layouts share it.
template <ActFormat F>
void PrepareScalar(const float* x, int64_t cols, PreparedActivation* act) {
  act->x = x;
  act->cols = cols;
  act->quantized.resize(ActBytes(F, cols));
  QuantizeAct(F, x, act->quantized.data(), cols);
}

}  // namespace qforge
