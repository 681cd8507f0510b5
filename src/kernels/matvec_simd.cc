// Runtime ISA dispatch: the AVX-512 tables when the CPU has AVX-512 VNNI (types without an AVX-512 kernel use
// AVX2), else the AVX2 table when the CPU has AVX2, FMA and F16C (checked once).
#include "kernels_internal.h"
#include "matvec_avx2.h"
#include "matvec_avx512.h"

#include "qforge/core/cpu_features.h"

namespace qforge {

bool CpuHasAvx2() { return CpuHasAvx2Fma(); }

const MatVecKernel* BestSimdKernel(GgmlType type) {
  if (CpuHasAvx512Vnni()) {
    if (const MatVecKernel* k = Avx512KMatVecKernel(type)) return k;
    if (const MatVecKernel* k = Avx512LegacyMatVecKernel(type)) return k;
  }
  return CpuHasAvx2() ? Avx2MatVecKernel(type) : nullptr;
}

}  // namespace qforge
