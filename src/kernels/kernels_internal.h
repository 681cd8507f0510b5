// Internal hook between dispatch and the SIMD kernel files.
#pragma once

#include "qforge/kernels/matvec.h"

namespace qforge {

// The fastest SIMD kernel for `type` on this CPU, or nullptr (then the scalar reference is used).
const MatVecKernel* BestSimdKernel(GgmlType type);

}  // namespace qforge
