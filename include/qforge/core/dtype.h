// Element types of plain (unblocked) tensors, as they appear in safetensors and in memory, and a
// strided tensor view over borrowed memory. Block-quantized types live in formats/ggml_type.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace qforge {

enum class DType { kF32, kF16, kBF16, kF64, kI8, kU8, kI16, kI32, kI64, kBool };

size_t DTypeSize(DType t);
std::string_view DTypeName(DType t);                       // safetensors spelling: "F32", "BF16", ...
std::optional<DType> DTypeFromName(std::string_view name);  // inverse of DTypeName

// A view of a tensor in memory: shape outermost-first (PyTorch order), strides in elements.
struct TensorView {
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  std::vector<int64_t> strides;
  const void* data = nullptr;

  static TensorView Contiguous(DType dtype, std::vector<int64_t> shape, const void* data);
  int64_t numel() const;
  bool is_contiguous() const;
};

}  // namespace qforge
