// GGUF v3: a validating reader over a memory-mapped file and a streaming, deterministic writer.
// Layout facts: ggml docs/gguf.md and ggml/src/gguf.cpp (see docs/formats.md).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "qforge/core/atomic_file.h"
#include "qforge/core/mapped_file.h"
#include "qforge/core/status.h"
#include "qforge/formats/ggml_type.h"
#include "qforge/formats/metadata.h"
#include "qforge/formats/source_model.h"

namespace qforge {

constexpr uint32_t kGgufDefaultAlignment = 32;
constexpr size_t kGgufMaxNameLength = 63;  // ggml rejects names of 64 bytes or more
constexpr uint32_t kGgmlQuantizationVersion = 2;
// Our own sanity limits (ggml has none): larger alignments only waste space, and deeper arrays than
// any real file uses would let a tiny file drive deep recursion.
constexpr uint32_t kGgufMaxAlignment = 1u << 20;
constexpr int kGgufMaxArrayDepth = 8;  // an array of arrays has depth 2

struct GgufTensorInfo {
  std::string name;
  std::vector<uint64_t> ne;  // 1..4 dims, ne[0] innermost
  GgmlType type = GgmlType::F32;
  uint64_t offset = 0;  // relative to the start of the data section
  uint64_t nbytes = 0;  // validated: rows * row bytes
  uint64_t numel() const;
};

// A parsed GGUF file. Every count, length, offset and size was checked against the file before use.
struct GgufFile {
  std::shared_ptr<MappedFile> file;  // null when parsed from memory (ParseGguf)
  std::span<const uint8_t> bytes;    // the whole file: the mapping, or the caller's buffer
  uint32_t version = 3;
  uint32_t alignment = kGgufDefaultAlignment;
  Metadata metadata;
  std::vector<GgufTensorInfo> tensors;
  uint64_t data_offset = 0;  // absolute offset of the data section

  // The bytes of tensor i inside the mapping.
  std::span<const uint8_t> TensorData(size_t i) const;
};

StatusOr<GgufFile> ReadGguf(const std::string& path);
// Parses from memory (fuzzing, tests); `name` is used in error messages. The result points into
// `bytes` (TensorData), which must outlive it.
StatusOr<GgufFile> ParseGguf(std::span<const uint8_t> bytes, const std::string& name);

// A GGUF file as a SourceModel: raw bytes for every tensor, read_f32 for F32/F16/BF16 tensors.
StatusOr<SourceModel> OpenGgufSource(const std::string& path);

// What the writer needs to know of a tensor before any data is produced.
struct GgufTensorDecl {
  std::string name;
  std::vector<uint64_t> ne;
  GgmlType type = GgmlType::F32;
};

// Streaming writer: Begin() writes header, metadata and tensor infos (offsets computed from the
// declarations); then WriteTensor() once per tensor, in declaration order, each padded to the alignment;
// Finish() checks every tensor was written and commits the atomic file. The same inputs always
// produce the same bytes.
class GgufWriter {
 public:
  static StatusOr<GgufWriter> Begin(const std::string& path, const Metadata& metadata,
                                    const std::vector<GgufTensorDecl>& tensors,
                                    uint32_t alignment = kGgufDefaultAlignment);
  // data.size() must equal the declared tensor's byte size.
  Status WriteTensor(std::span<const uint8_t> data);
  Status Finish();
  size_t tensors_written() const { return next_; }

 private:
  GgufWriter(AtomicFile file) : file_(std::move(file)) {}
  AtomicFile file_;
  std::vector<GgufTensorDecl> decls_;
  std::vector<uint64_t> sizes_;
  uint32_t alignment_ = kGgufDefaultAlignment;
  size_t next_ = 0;
};

// Sets general.file_type (u32 LLAMA_FTYPE) and, when any tensor is quantized (where llama.cpp requires
// it), general.quantization_version (u32, GGML_QNT_VERSION = 2); otherwise that key is left as it is.
void SetGgufFileTypeKeys(Metadata* metadata, uint32_t llama_ftype, bool any_quantized);

// Bytes of a tensor of `type` with dims `ne`; error if ne[0] is not a multiple of the block size or the
// product overflows.
StatusOr<uint64_t> GgufTensorBytes(GgmlType type, const std::vector<uint64_t>& ne);

}  // namespace qforge
