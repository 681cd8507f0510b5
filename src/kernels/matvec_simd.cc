// Runtime ISA dispatch: hands out the AVX2 table when the CPU has AVX2, FMA and F16C (checked once).
#include "kernels_internal.h"
#include "matvec_avx2.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif

namespace qforge {

bool CpuHasAvx2() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  static const bool ok = [] {
    __builtin_cpu_init();
    // clang 14 does not know the "f16c" feature name: read CPUID leaf 1, ECX bit 29 directly.
    unsigned a = 0, b = 0, c = 0, d = 0;
    const bool f16c = __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29)) != 0;
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
  }();
  return ok;
#else
  return false;
#endif
}

const MatVecKernel* BestSimdKernel(GgmlType type) { return CpuHasAvx2() ? Avx2MatVecKernel(type) : nullptr; }

}  // namespace qforge
