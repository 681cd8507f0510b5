// Runtime ISA dispatch: hands out the AVX2 table when the CPU has AVX2, FMA and F16C (checked once).
#include "kernels_internal.h"
#include "matvec_avx2.h"

namespace qforge {

bool CpuHasAvx2() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  static const bool ok = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  }();
  return ok;
#else
  return false;
#endif
}

const MatVecKernel* BestSimdKernel(GgmlType type) { return CpuHasAvx2() ? Avx2MatVecKernel(type) : nullptr; }

}  // namespace qforge
