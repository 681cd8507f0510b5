// DType names and sizes; contiguous tensor views.
#include "qforge/core/dtype.h"

namespace qforge {
namespace {

struct DTypeRow {
  DType t;
  std::string_view name;
  size_t size;
};
constexpr DTypeRow kDTypes[] = {
    {DType::kF32, "F32", 4}, {DType::kF16, "F16", 2}, {DType::kBF16, "BF16", 2}, {DType::kF64, "F64", 8},
    {DType::kI8, "I8", 1},   {DType::kU8, "U8", 1},   {DType::kI16, "I16", 2},   {DType::kI32, "I32", 4},
    {DType::kI64, "I64", 8}, {DType::kBool, "BOOL", 1},
};

}  // namespace

size_t DTypeSize(DType t) {
  for (const auto& r : kDTypes) if (r.t == t) return r.size;
  return 0;
}
std::string_view DTypeName(DType t) {
  for (const auto& r : kDTypes) if (r.t == t) return r.name;
  return "?";
}
std::optional<DType> DTypeFromName(std::string_view name) {
  for (const auto& r : kDTypes) if (r.name == name) return r.t;
  return std::nullopt;
}

TensorView TensorView::Contiguous(DType dtype, std::vector<int64_t> shape, const void* data) {
  TensorView v;
  v.dtype = dtype;
  v.shape = std::move(shape);
  v.strides.assign(v.shape.size(), 1);
  for (int i = static_cast<int>(v.shape.size()) - 2; i >= 0; --i) v.strides[i] = v.strides[i + 1] * v.shape[i + 1];
  v.data = data;
  return v;
}

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

bool TensorView::is_contiguous() const {
  int64_t expect = 1;
  for (int i = static_cast<int>(shape.size()) - 1; i >= 0; --i) {
    if (shape[i] != 1 && strides[i] != expect) return false;
    expect *= shape[i];
  }
  return true;
}

}  // namespace qforge
