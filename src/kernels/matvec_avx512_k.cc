// AVX-512 kernels for the k-quant types. (Not written yet: every type falls back to AVX2.)
#include "matvec_avx512.h"

namespace qforge {

const MatVecKernel* Avx512KMatVecKernel(GgmlType) { return nullptr; }

}  // namespace qforge
