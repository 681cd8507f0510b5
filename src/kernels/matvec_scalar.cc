// The scalar reference kernels: decode each row with the registry's decoder, then a float dot product
// accumulated in double (so the reference is more accurate than any fast path it is compared with).
#include <array>
#include <mutex>

#include "qforge/kernels/matvec.h"
#include "qforge/quant/registry.h"

namespace qforge {
namespace {

void PrepareFloat(const float* x, int64_t cols, PreparedActivation* act) {
  act->x = x;
  act->cols = cols;
  act->quantized.clear();
}

template <GgmlType T>
void RowsScalar(const uint8_t* w, size_t row_bytes, const PreparedActivation& act, float* y, int64_t r0, int64_t r1) {
  static const QuantType* q = FindQuantType(T);
  thread_local std::vector<float> row;
  row.resize(static_cast<size_t>(act.cols));
  for (int64_t r = r0; r < r1; ++r) {
    q->decode(w + r * row_bytes, row.data(), act.cols);
    double acc = 0;
    for (int64_t c = 0; c < act.cols; ++c) acc += static_cast<double>(row[c]) * act.x[c];
    y[r - r0] = static_cast<float>(acc);
  }
}

template <GgmlType T>
constexpr MatVecKernel ScalarOf() {
  return {"scalar", PrepareFloat, RowsScalar<T>};
}

#define QF_SCALAR(T) {GgmlType::T, ScalarOf<GgmlType::T>()}
struct Entry {
  GgmlType type;
  MatVecKernel kernel;
};
const Entry kScalar[] = {
    QF_SCALAR(F32),  QF_SCALAR(F16),  QF_SCALAR(BF16), QF_SCALAR(Q4_0),   QF_SCALAR(Q4_1),  QF_SCALAR(Q5_0),
    QF_SCALAR(Q5_1), QF_SCALAR(Q8_0), QF_SCALAR(Q2_K), QF_SCALAR(Q3_K),   QF_SCALAR(Q4_K),  QF_SCALAR(Q5_K),
    QF_SCALAR(Q6_K), QF_SCALAR(IQ4_NL), QF_SCALAR(IQ4_XS),
};
#undef QF_SCALAR

}  // namespace

const MatVecKernel* ScalarMatVecKernel(GgmlType type) {
  const QuantType* q = FindQuantType(type);
  if (q == nullptr || q->decode == nullptr) return nullptr;
  for (const auto& e : kScalar)
    if (e.type == type) return &e.kernel;
  return nullptr;
}

}  // namespace qforge
