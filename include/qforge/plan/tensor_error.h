// Per-tensor reconstruction error between a reference model and a quantized copy with the same tensor
// names and shapes (`qforge inspect --error REF QUANT`). Both are decoded to floats one tensor at a time,
// so memory stays at two tensors whatever the model size.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "qforge/core/status.h"
#include "qforge/formats/ggml_type.h"
#include "qforge/formats/source_model.h"

namespace qforge {

// Sums in double; the derived figures follow from them.
struct ErrorSums {
  uint64_t n = 0;
  double sum_ref2 = 0;   // Σ ref²
  double sum_err2 = 0;   // Σ (ref − q)²
  double max_abs = 0;    // max |ref − q|
  void Add(const ErrorSums& o);
  double rmse() const;
  // 10 log10(Σref² / Σ(ref−q)²): +inf when the tensors are identical, -inf when ref is all zeros but q is not.
  double snr_db() const;
};

struct TensorError {
  std::string name;
  std::vector<uint64_t> ne;
  GgmlType ref_type = GgmlType::F32;
  GgmlType quant_type = GgmlType::F32;
  ErrorSums sums;
};

struct ErrorReport {
  std::vector<TensorError> tensors;  // worst (lowest SNR) first; ties by name
  ErrorSums total;                   // over every element of every tensor
  ErrorSums quantized;               // over tensors whose stored type differs from the reference's
};

// Errors name the first tensor whose name is missing on either side or whose shape differs.
// progress (optional): called after each tensor with (done, total).
StatusOr<ErrorReport> CompareTensors(const SourceModel& ref, const SourceModel& quant,
                                     const std::function<void(size_t, size_t)>& progress = {});

// The SNR as text: "inf", "-inf" or "%.2f".
std::string FormatSnr(double snr_db);

}  // namespace qforge
