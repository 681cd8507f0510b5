// Runtime ISA dispatch: hands out the AVX2 table when the CPU has AVX2, FMA and F16C (checked once).
#include "kernels_internal.h"
#include "matvec_avx2.h"

#include "qforge/core/cpu_features.h"

namespace qforge {

bool CpuHasAvx2() { return CpuHasAvx2Fma(); }

const MatVecKernel* BestSimdKernel(GgmlType type) { return CpuHasAvx2() ? Avx2MatVecKernel(type) : nullptr; }

}  // namespace qforge
