// Streaming per-tensor comparison: decode the reference and the quantized tensor with ReadTensorF32,
// accumulate Σref², Σ(ref−q)² and max|ref−q| in double, keep only the sums.
#include "qforge/plan/tensor_error.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "qforge/pipeline/tensor_codec.h"

namespace qforge {
namespace {

std::string Shape(const std::vector<uint64_t>& ne) {
  std::string s;
  for (size_t i = 0; i < ne.size(); ++i) s += (i ? " x " : "") + std::to_string(ne[i]);
  return "[" + s + "]";
}

ErrorSums Accumulate(const float* ref, const float* q, uint64_t n) {
  ErrorSums s;
  s.n = n;
  for (uint64_t i = 0; i < n; ++i) {
    const double r = ref[i];
    const double e = r - static_cast<double>(q[i]);
    s.sum_ref2 += r * r;
    s.sum_err2 += e * e;
    s.max_abs = std::max(s.max_abs, std::fabs(e));
  }
  return s;
}

}  // namespace

void ErrorSums::Add(const ErrorSums& o) {
  n += o.n;
  sum_ref2 += o.sum_ref2;
  sum_err2 += o.sum_err2;
  max_abs = std::max(max_abs, o.max_abs);
}

double ErrorSums::rmse() const { return n ? std::sqrt(sum_err2 / static_cast<double>(n)) : 0.0; }

double ErrorSums::snr_db() const {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  if (sum_err2 == 0) return kInf;
  if (sum_ref2 == 0) return -kInf;
  return 10.0 * std::log10(sum_ref2 / sum_err2);
}

std::string FormatSnr(double snr_db) {
  if (std::isinf(snr_db)) return snr_db > 0 ? "inf" : "-inf";
  return fmt::format("{:.2f}", snr_db);
}

StatusOr<ErrorReport> CompareTensors(const SourceModel& ref, const SourceModel& quant,
                                     const std::function<void(size_t, size_t)>& progress) {
  // Check every name and shape before decoding anything, so a mismatch fails fast.
  for (const auto& t : ref.tensors) {
    const SourceTensor* q = quant.FindTensor(t.name);
    if (q == nullptr) {
      return Status::Error(fmt::format("tensor '{}' is in {} but not in {}", t.name, ref.path, quant.path));
    }
    if (q->ne != t.ne) {
      return Status::Error(fmt::format("tensor '{}' has shape {} in {} but {} in {}", t.name, Shape(t.ne), ref.path,
                                       Shape(q->ne), quant.path));
    }
  }
  for (const auto& q : quant.tensors) {
    if (ref.FindTensor(q.name) == nullptr) {
      return Status::Error(fmt::format("tensor '{}' is in {} but not in {}", q.name, quant.path, ref.path));
    }
  }

  ErrorReport report;
  std::vector<float> a, b;
  for (size_t i = 0; i < ref.tensors.size(); ++i) {
    const SourceTensor& r = ref.tensors[i];
    const SourceTensor& q = *quant.FindTensor(r.name);
    a.resize(r.numel());
    b.resize(q.numel());
    QF_RETURN_IF_ERROR(ReadTensorF32(r, a.data()).WithContext(fmt::format("{}: tensor {}", ref.path, r.name)));
    QF_RETURN_IF_ERROR(ReadTensorF32(q, b.data()).WithContext(fmt::format("{}: tensor {}", quant.path, q.name)));
    TensorError e{r.name, r.ne, r.type, q.type, Accumulate(a.data(), b.data(), r.numel())};
    report.total.Add(e.sums);
    if (e.ref_type != e.quant_type) report.quantized.Add(e.sums);
    report.tensors.push_back(std::move(e));
    if (progress) progress(i + 1, ref.tensors.size());
  }
  std::stable_sort(report.tensors.begin(), report.tensors.end(), [](const TensorError& x, const TensorError& y) {
    const double sx = x.sums.snr_db(), sy = y.sums.snr_db();
    if (sx != sy) return sx < sy;
    return x.name < y.name;
  });
  return report;
}

}  // namespace qforge
