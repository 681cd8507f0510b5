// The scalar reference kernels, with ggml's semantics: prepare() rounds the activations into the weight type's
// vec_dot_type (Q8_0 / Q8_1 / Q8_K / F16 / BF16, activation_quant.h), rows() takes the per-type dot of
// dot_scalar.cc. This is the spec every SIMD table is tested against (kernels_test.cc). ExactMatVec, the
// float-activation decode + double dot, is kept only so tests can bound the spec's rounding error.
#include <vector>

#include "activation_quant.h"
#include "dot_scalar.h"
#include "kernels_internal.h"
#include "qforge/kernels/matvec.h"
#include "qforge/quant/registry.h"

namespace qforge {
namespace {

using RowDot = float (*)(const uint8_t* w, const uint8_t* act, int64_t n);

template <RowDot Dot, bool kFloatAct>
void RowsScalar(const uint8_t* w, size_t row_bytes, const PreparedActivation& act, float* y, int64_t r0, int64_t r1) {
  const uint8_t* a = kFloatAct ? reinterpret_cast<const uint8_t*>(act.x) : act.quantized.data();
  for (int64_t r = r0; r < r1; ++r) y[r - r0] = Dot(w + r * row_bytes, a, act.cols);
}

struct Entry {
  GgmlType type;
  MatVecKernel kernel;
};

template <ActFormat F, RowDot Dot>
constexpr MatVecKernel Scalar() {
  return {"scalar", PrepareScalar<F>, RowsScalar<Dot, F == ActFormat::kF32>};
}

constexpr Entry kScalar[] = {
    {GgmlType::F32, Scalar<ActFormat::kF32, DotF32>()},
    {GgmlType::F16, Scalar<ActFormat::kF16, DotF16>()},
    {GgmlType::BF16, Scalar<ActFormat::kBF16, DotBF16>()},
    {GgmlType::Q4_0, Scalar<ActFormat::kQ8_0, DotQ4_0>()},
    {GgmlType::Q4_1, Scalar<ActFormat::kQ8_1, DotQ4_1>()},
    {GgmlType::Q5_0, Scalar<ActFormat::kQ8_0, DotQ5_0>()},
    {GgmlType::Q5_1, Scalar<ActFormat::kQ8_1, DotQ5_1>()},
    {GgmlType::Q8_0, Scalar<ActFormat::kQ8_0, DotQ8_0>()},
    {GgmlType::IQ4_NL, Scalar<ActFormat::kQ8_0, DotIQ4_NL>()},
    {GgmlType::Q2_K, Scalar<ActFormat::kQ8_K, DotQ2_K>()},
    {GgmlType::Q3_K, Scalar<ActFormat::kQ8_K, DotQ3_K>()},
    {GgmlType::Q4_K, Scalar<ActFormat::kQ8_K, DotQ4_K>()},
    {GgmlType::Q5_K, Scalar<ActFormat::kQ8_K, DotQ5_K>()},
    {GgmlType::Q6_K, Scalar<ActFormat::kQ8_K, DotQ6_K>()},
    {GgmlType::IQ4_XS, Scalar<ActFormat::kQ8_K, DotIQ4_XS>()},
};

}  // namespace

const MatVecKernel* ScalarMatVecKernel(GgmlType type) {
  const QuantType* q = FindQuantType(type);
  if (q == nullptr || q->decode == nullptr) return nullptr;
  for (const auto& e : kScalar)
    if (e.type == type) return &e.kernel;
  return nullptr;
}

void ExactMatVec(GgmlType type, const uint8_t* w, size_t row_bytes, const float* x, int64_t cols, float* y,
                 int64_t rows) {
  const QuantType* q = FindQuantType(type);
  std::vector<float> row(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    q->decode(w + r * row_bytes, row.data(), cols);
    double acc = 0;
    for (int64_t c = 0; c < cols; ++c) acc += static_cast<double>(row[c]) * x[c];
    y[r] = static_cast<float>(acc);
  }
}

}  // namespace qforge
