// Tensor-shape and alignment rules of GGUF (ggml/src/gguf.cpp), shared by the reader and the writer.
#include <algorithm>
#include <numeric>

#include <fmt/format.h>

#include "qforge/core/checked.h"
#include "qforge/formats/gguf.h"
#include "gguf_internal.h"

namespace qforge {
namespace gguf_internal {

uint64_t MinValueBytes(GgufValueType type) {
  switch (type) {
    case GgufValueType::U8: case GgufValueType::I8: case GgufValueType::BOOL: return 1;
    case GgufValueType::U16: case GgufValueType::I16: return 2;
    case GgufValueType::U32: case GgufValueType::I32: case GgufValueType::F32: return 4;
    case GgufValueType::U64: case GgufValueType::I64: case GgufValueType::F64: return 8;
    case GgufValueType::STRING: return 8;
    case GgufValueType::ARRAY: return 4 + 8;
  }
  return 1;
}

StatusOr<uint64_t> CheckTensorShape(const std::string& name, const std::vector<uint64_t>& ne, uint32_t type_id) {
  if (name.size() > kGgufMaxNameLength) {
    return Status::Error(fmt::format("tensor name of {} bytes is longer than the {} bytes ggml allows",
                                     name.size(), kGgufMaxNameLength));
  }
  std::string where = name.empty() ? std::string("tensor") : fmt::format("tensor '{}'", name);
  if (ne.empty() || ne.size() > 4) {
    return Status::Error(fmt::format("{}: n_dims {} is not in 1..4", where, ne.size()));
  }
  uint64_t numel = 1;
  for (size_t k = 0; k < ne.size(); ++k) {
    // ggml stores dims as int64: 0 and "negative" values are both invalid.
    if (ne[k] == 0 || ne[k] > static_cast<uint64_t>(INT64_MAX)) {
      return Status::Error(fmt::format("{}: dimension {} is {} (must be 1..2^63-1)", where, k,
                                       static_cast<int64_t>(ne[k])));
    }
    auto n = CheckedMul(numel, ne[k]);
    if (!n || *n > static_cast<uint64_t>(INT64_MAX)) {
      return Status::Error(fmt::format("{}: the product of the dimensions overflows int64", where));
    }
    numel = *n;
  }
  auto layout = GgmlLayout(type_id);
  if (!layout) {
    return Status::Error(fmt::format("{}: unknown or removed ggml type id {}", where, type_id));
  }
  if (ne[0] % layout->block_size != 0) {
    return Status::Error(fmt::format("{}: ne[0] = {} is not a multiple of the {} block size {}", where, ne[0],
                                     layout->name, layout->block_size));
  }
  auto bytes = CheckedMul(numel / layout->block_size, layout->type_size);
  if (!bytes || *bytes > static_cast<uint64_t>(INT64_MAX)) {
    return Status::Error(fmt::format("{}: the byte size overflows int64", where));
  }
  return *bytes;
}

Status CheckAlignment(uint64_t alignment) {
  if (!IsPowerOfTwo(alignment) || alignment > kGgufMaxAlignment) {
    return Status::Error(fmt::format("general.alignment {} is not a power of two in 1..{}", alignment,
                                     kGgufMaxAlignment));
  }
  return Status::Ok();
}

Status CheckDataLayout(const GgufFile& gguf, const std::vector<uint64_t>& info_offsets, const std::string& name) {
  const uint64_t size = gguf.bytes.size();
  for (size_t i = 0; i < gguf.tensors.size(); ++i) {
    const GgufTensorInfo& t = gguf.tensors[i];
    auto start = CheckedAdd(gguf.data_offset, t.offset);
    auto end = start ? CheckedAdd(*start, t.nbytes) : std::nullopt;
    if (!end || *end > size) {
      return Status::Error(fmt::format("tensor '{}': data at offset {} + {} bytes extends past the end of the "
                                       "file ({} bytes, data section at {})", t.name, t.offset, t.nbytes, size,
                                       gguf.data_offset), name, static_cast<int64_t>(info_offsets[i]));
    }
  }
  // Sorted by offset, each tensor must end before the next begins (sizes are > 0, dims being >= 1).
  std::vector<size_t> order(gguf.tensors.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return gguf.tensors[a].offset < gguf.tensors[b].offset; });
  for (size_t k = 1; k < order.size(); ++k) {
    const GgufTensorInfo& prev = gguf.tensors[order[k - 1]];
    const GgufTensorInfo& cur = gguf.tensors[order[k]];
    if (prev.offset + prev.nbytes > cur.offset) {  // no overflow: both end inside the file
      return Status::Error(fmt::format("tensors '{}' [{}, {}) and '{}' [{}, {}) overlap", prev.name, prev.offset,
                                       prev.offset + prev.nbytes, cur.name, cur.offset, cur.offset + cur.nbytes),
                           name, static_cast<int64_t>(info_offsets[order[k]]));
    }
  }
  return Status::Ok();
}

}  // namespace gguf_internal

uint64_t GgufTensorInfo::numel() const {
  uint64_t n = 1;
  for (uint64_t d : ne) n *= d;  // the reader checked the product against overflow
  return n;
}

StatusOr<uint64_t> GgufTensorBytes(GgmlType type, const std::vector<uint64_t>& ne) {
  return gguf_internal::CheckTensorShape("", ne, static_cast<uint32_t>(type));
}

}  // namespace qforge
