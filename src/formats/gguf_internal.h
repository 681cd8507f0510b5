// Checks shared by the GGUF reader and writer, so a file the writer accepts is exactly a file the reader
// accepts. Errors carry no file or offset; the caller adds them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "qforge/core/status.h"
#include "qforge/formats/gguf.h"
#include "qforge/formats/metadata.h"

namespace qforge::gguf_internal {

// Smallest encoding of one value of `type`: a string is at least its u64 length, an array its u32
// element type and u64 count. Bounds array counts before anything is allocated.
uint64_t MinValueBytes(GgufValueType type);

// Name length, 1..4 dims, each dim in 1..INT64_MAX, element count and byte size without overflow, a
// type id GGUF may use, ne[0] a multiple of the block size. Returns the tensor's byte size.
StatusOr<uint64_t> CheckTensorShape(const std::string& name, const std::vector<uint64_t>& ne, uint32_t type_id);

// general.alignment: a power of two in 1..kGgufMaxAlignment.
Status CheckAlignment(uint64_t alignment);

// Every tensor's [offset, offset + nbytes) inside the file after gguf->data_offset, and no two tensors
// overlapping. info_offsets[i] is where tensor i's info starts (for the error offset).
Status CheckDataLayout(const GgufFile& gguf, const std::vector<uint64_t>& info_offsets, const std::string& name);

}  // namespace qforge::gguf_internal
