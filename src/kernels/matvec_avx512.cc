// AVX-512 kernels for the legacy 32-element block types. (Not written yet: every type falls back to AVX2.)
#include "matvec_avx512.h"

namespace qforge {

const MatVecKernel* Avx512LegacyMatVecKernel(GgmlType) { return nullptr; }

}  // namespace qforge
