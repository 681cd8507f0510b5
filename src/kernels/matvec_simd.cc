// SIMD kernels (none yet): every type currently runs the scalar reference.
#include "kernels_internal.h"

namespace qforge {

const MatVecKernel* BestSimdKernel(GgmlType) { return nullptr; }

}  // namespace qforge
