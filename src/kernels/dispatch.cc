// Chooses the kernel table once: the best ISA the CPU supports unless QFORGE_KERNELS=scalar forces the
// reference (used by tests and to check a suspected SIMD bug in the field).
#include <algorithm>
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

void MatMulRows(const MatVecKernel& k, const uint8_t* w, size_t row_bytes, const PreparedActivation* acts, int n,
                float* y, size_t ldy, int64_t r0, int64_t r1) {
  if (n > 1 && k.rows_batch != nullptr) {
    k.rows_batch(w, row_bytes, acts, n, y, ldy, r0, r1);
    return;
  }
  // 16 rows of even a 5632-column Q8_0 matrix are 96 KB: they stay in L2 while the activations pass.
  constexpr int64_t kTile = 16;
  for (int64_t r = r0; r < r1; r += kTile) {
    const int64_t e = std::min(r1, r + kTile);
    for (int t = 0; t < n; ++t) k.rows(w, row_bytes, acts[t], y + t * ldy + r, r, e);
  }
}

}  // namespace qforge
