// Decode/encode of whole tensors through the quant registry.
#include "qforge/pipeline/tensor_codec.h"

#include <fmt/format.h>

#include "qforge/core/parallel.h"
#include "qforge/quant/registry.h"

namespace qforge {

Status ReadTensorF32(const SourceTensor& tensor, float* dst) {
  if (tensor.read_f32) return tensor.read_f32(dst).WithContext("tensor " + tensor.name);
  const QuantType* q = FindQuantType(tensor.type);
  if (q == nullptr || q->decode == nullptr || tensor.raw.empty()) {
    return Status::Error(fmt::format("tensor {}: cannot decode type {}", tensor.name, GgmlTypeName(tensor.type)));
  }
  const uint64_t n = tensor.numel();
  auto bytes = GgmlRowBytes(tensor.type, n);
  if (!bytes || *bytes != tensor.raw.size()) {
    return Status::Error(fmt::format("tensor {}: stored size does not match its shape", tensor.name));
  }
  q->decode(tensor.raw.data(), dst, static_cast<int64_t>(n));
  return Status::Ok();
}

Status EncodeTensor(GgmlType type, const float* src, uint64_t numel, uint64_t row_len, uint8_t* out,
                    const float* importance, int threads) {
  const QuantType* q = FindQuantType(type);
  if (q == nullptr || q->encode == nullptr) {
    return Status::Error(fmt::format("type {} has no encoder", GgmlTypeName(type)));
  }
  auto row_bytes = GgmlRowBytes(type, row_len);
  if (row_len == 0 || !row_bytes || numel % row_len != 0) {
    return Status::Error(
        fmt::format("row length {} is not a multiple of {}'s block size", row_len, GgmlTypeName(type)));
  }
  const int64_t rows = static_cast<int64_t>(numel / row_len);
  ParallelFor(rows, threads, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      q->encode(src + r * row_len, out + r * *row_bytes, static_cast<int64_t>(row_len), importance);
    }
  });
  return Status::Ok();
}

}  // namespace qforge
