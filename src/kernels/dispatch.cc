// Chooses the kernel table once: the best ISA the CPU supports unless QFORGE_KERNELS=scalar forces the
// reference (used by tests and to check a suspected SIMD bug in the field).
#include <cstdlib>
#include <cstring>

#include "kernels_internal.h"
#include "qforge/kernels/matvec.h"

namespace qforge {

const MatVecKernel* FindMatVecKernel(GgmlType type, KernelIsa isa) {
  static const bool force_scalar = [] {
    const char* env = std::getenv("QFORGE_KERNELS");
    return env != nullptr && std::strcmp(env, "scalar") == 0;
  }();
  if (isa == KernelIsa::kBest && !force_scalar) {
    if (const MatVecKernel* k = BestSimdKernel(type)) return k;
  }
  return ScalarMatVecKernel(type);
}

}  // namespace qforge
