// Chooses the kernel table once: the best ISA the CPU supports unless QFORGE_KERNELS=scalar forces the
// reference (used by tests and to check a suspected SIMD bug in the field); QFORGE_KERNELS=avx512 leaves the
// AMX batch kernels out (to compare them with the AVX-512 VNNI ones).
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <initializer_list>

#include "kernels_internal.h"
#include "packed_k16.h"
#include "packed_x16.h"
#include "qforge/core/cpu_features.h"
#include "qforge/kernels/matvec.h"

namespace qforge {

namespace {

bool KernelsEnvIs(const char* value) {
  const char* env = std::getenv("QFORGE_KERNELS");
  return env != nullptr && std::strcmp(env, value) == 0;
}

bool ForceScalar() {
  static const bool force_scalar = KernelsEnvIs("scalar");
  return force_scalar;
}

}  // namespace

bool AmxEnabled() {
  static const bool enabled = !ForceScalar() && !KernelsEnvIs("avx512") && CpuHasAmxInt8();
  return enabled;
}

const MatVecKernel* FindMatVecKernel(GgmlType type, KernelIsa isa) {
  if (isa == KernelIsa::kBest && !ForceScalar()) {
    if (const MatVecKernel* k = BestSimdKernel(type)) return k;
  }
  return ScalarMatVecKernel(type);
}

const PackedLayout* FindPackedLayout(GgmlType type) {
  // Only AVX-512 VNNI reads packed layouts (on AVX2 machines the stored rows are kept: the interleaved layout
  // pays with a 16-lane integer dot product).
  if (ForceScalar() || !CpuHasAvx512Vnni()) return nullptr;
  for (const PackedLayout* l : {X16Layout(type), K16Layout(type)})
    if (l != nullptr && l->kernel != nullptr) return l;
  return nullptr;
}

void MatMulRows(const MatVecKernel& k, const uint8_t* w, size_t row_bytes, const PreparedActivation* acts, int n,
                float* y, size_t ldy, int64_t r0, int64_t r1) {
  if (n > 1 && k.rows_batch != nullptr) {
    k.rows_batch(w, row_bytes, acts, n, y, ldy, r0, r1);
    return;
  }
  if (n == 1) {  // decode: one call, so a kernel can stream several row groups at once
    k.rows(w, row_bytes, acts[0], y + r0, r0, r1);
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
