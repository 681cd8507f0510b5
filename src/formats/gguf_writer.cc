// The streaming GGUF v3 writer. Begin() validates every declaration with the reader's own rules and
// writes header, metadata and tensor infos; offsets are the running sum of the tensors' sizes, each
// padded to the alignment, which is exactly what ggml's gguf.cpp demands.
#include <cstring>
#include <unordered_set>

#include <fmt/format.h>

#include "gguf_internal.h"
#include "utf8_check.h"
#include "qforge/core/checked.h"
#include "qforge/formats/gguf.h"

namespace qforge {
namespace {

constexpr char kAlignmentKey[] = "general.alignment";

// Little-endian serialisation of the header into memory (it is small next to the tensor data).
class Encoder {
 public:
  template <typename T>
  void Put(T v) {
    static_assert(std::is_trivially_copyable_v<T>);
    size_t at = buf_.size();
    buf_.resize(at + sizeof(T));
    std::memcpy(buf_.data() + at, &v, sizeof(T));
  }
  void PutString(const std::string& s) {
    Put<uint64_t>(s.size());
    buf_.insert(buf_.end(), s.begin(), s.end());
  }
  void PutValue(const MetaValue& v);
  void PadTo(uint64_t alignment) { buf_.resize(*CheckedAlignUp(buf_.size(), alignment), 0); }
  const std::vector<uint8_t>& bytes() const { return buf_; }

 private:
  std::vector<uint8_t> buf_;
};

void Encoder::PutValue(const MetaValue& v) {
  switch (v.type) {
    case GgufValueType::U8: return Put(static_cast<uint8_t>(v.u));
    case GgufValueType::U16: return Put(static_cast<uint16_t>(v.u));
    case GgufValueType::U32: return Put(static_cast<uint32_t>(v.u));
    case GgufValueType::U64: return Put(static_cast<uint64_t>(v.u));
    case GgufValueType::I8: return Put(static_cast<int8_t>(v.i));
    case GgufValueType::I16: return Put(static_cast<int16_t>(v.i));
    case GgufValueType::I32: return Put(static_cast<int32_t>(v.i));
    case GgufValueType::I64: return Put(static_cast<int64_t>(v.i));
    case GgufValueType::F32: return Put(static_cast<float>(v.f));
    case GgufValueType::F64: return Put(v.f);
    case GgufValueType::BOOL: return Put(static_cast<uint8_t>(v.u != 0));
    case GgufValueType::STRING: return PutString(v.s);
    case GgufValueType::ARRAY:
      Put(static_cast<uint32_t>(v.elem_type));
      Put<uint64_t>(v.array.size());
      for (const MetaValue& e : v.array) PutValue(e);
      return;
  }
}

// A value the reader would reject (bad type codes, mixed arrays, too deep) must not be written.
Status CheckValue(const MetaValue& v, int depth, const std::string& key) {
  if (!IsValidGgufValueType(static_cast<uint32_t>(v.type))) {
    return Status::Error(fmt::format("metadata key '{}': invalid value type {}", key, static_cast<uint32_t>(v.type)));
  }
  if (v.type == GgufValueType::STRING && formats_internal::FindInvalidUtf8(v.s) != std::string_view::npos) {
    return Status::Error(fmt::format("metadata key '{}': string value is not valid UTF-8", key));
  }
  if (v.type != GgufValueType::ARRAY) return Status::Ok();
  if (depth + 1 > kGgufMaxArrayDepth) {
    return Status::Error(fmt::format("metadata key '{}': arrays nested deeper than {} levels", key,
                                     kGgufMaxArrayDepth));
  }
  if (!IsValidGgufValueType(static_cast<uint32_t>(v.elem_type))) {
    return Status::Error(fmt::format("metadata key '{}': invalid array element type", key));
  }
  for (const MetaValue& e : v.array) {
    if (e.type != v.elem_type) {
      return Status::Error(fmt::format("metadata key '{}': array of {} holds a {} element", key,
                                       GgufValueTypeName(v.elem_type), GgufValueTypeName(e.type)));
    }
    QF_RETURN_IF_ERROR(CheckValue(e, depth + 1, key));
  }
  return Status::Ok();
}

// general.alignment, if the caller set it, must agree with the writer's alignment; returns whether the
// writer has to add it (any alignment but the default must be recorded in the file).
StatusOr<bool> NeedsAlignmentKey(const Metadata& metadata, uint32_t alignment) {
  const MetaValue* v = metadata.Find(kAlignmentKey);
  if (v == nullptr) return alignment != kGgufDefaultAlignment;
  if (v->type != GgufValueType::U32 || v->u != alignment) {
    return Status::Error(fmt::format("metadata general.alignment ({} {}) disagrees with the writer's alignment {}",
                                     GgufValueTypeName(v->type), v->ToString(), alignment));
  }
  return false;
}

// Validates the declarations and returns each tensor's byte size.
StatusOr<std::vector<uint64_t>> CheckDecls(const std::vector<GgufTensorDecl>& tensors) {
  std::vector<uint64_t> sizes;
  std::unordered_set<std::string> names;
  for (const GgufTensorDecl& t : tensors) {
    QF_ASSIGN_OR_RETURN(uint64_t nbytes,
                        gguf_internal::CheckTensorShape(t.name, t.ne, static_cast<uint32_t>(t.type)));
    if (!names.insert(t.name).second) return Status::Error(fmt::format("duplicate tensor name '{}'", t.name));
    if (formats_internal::FindInvalidUtf8(t.name) != std::string_view::npos) {
      return Status::Error("a tensor name is not valid UTF-8");
    }
    sizes.push_back(nbytes);
  }
  return sizes;
}

StatusOr<std::vector<uint8_t>> EncodeHeader(const Metadata& metadata, bool add_alignment,
                                            const std::vector<GgufTensorDecl>& tensors,
                                            const std::vector<uint64_t>& sizes, uint32_t alignment) {
  Encoder e;
  e.Put<uint32_t>(0x46554747);  // "GGUF" read as a little-endian u32
  e.Put<uint32_t>(3);
  e.Put<uint64_t>(tensors.size());
  e.Put<uint64_t>(metadata.size() + (add_alignment ? 1 : 0));
  for (const auto& [key, value] : metadata.entries()) {
    if (formats_internal::FindInvalidUtf8(key) != std::string_view::npos) {
      return Status::Error("a metadata key is not valid UTF-8");
    }
    QF_RETURN_IF_ERROR(CheckValue(value, 0, key));
    e.PutString(key);
    e.Put(static_cast<uint32_t>(value.type));
    e.PutValue(value);
  }
  if (add_alignment) {
    e.PutString(kAlignmentKey);
    e.Put(static_cast<uint32_t>(GgufValueType::U32));
    e.Put(alignment);
  }
  uint64_t offset = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    e.PutString(tensors[i].name);
    e.Put<uint32_t>(tensors[i].ne.size());
    for (uint64_t d : tensors[i].ne) e.Put(d);
    e.Put(static_cast<uint32_t>(tensors[i].type));
    e.Put(offset);
    auto next = CheckedAlignUp(sizes[i], alignment);
    if (next) next = CheckedAdd(offset, *next);
    if (!next) return Status::Error("total tensor data size overflows");
    offset = *next;
  }
  e.PadTo(alignment);
  return e.bytes();
}

}  // namespace

StatusOr<GgufWriter> GgufWriter::Begin(const std::string& path, const Metadata& metadata,
                                       const std::vector<GgufTensorDecl>& tensors, uint32_t alignment) {
  QF_RETURN_IF_ERROR(gguf_internal::CheckAlignment(alignment).WithFile(path));
  auto add_alignment = NeedsAlignmentKey(metadata, alignment);
  if (!add_alignment.ok()) return add_alignment.status().WithFile(path);
  auto sizes = CheckDecls(tensors);
  if (!sizes.ok()) return sizes.status().WithFile(path);
  auto header = EncodeHeader(metadata, *add_alignment, tensors, *sizes, alignment);
  if (!header.ok()) return header.status().WithFile(path);

  QF_ASSIGN_OR_RETURN(AtomicFile file, AtomicFile::Create(path));
  QF_RETURN_IF_ERROR(file.Write(*header));
  GgufWriter w(std::move(file));
  w.decls_ = tensors;
  w.sizes_ = std::move(*sizes);
  w.alignment_ = alignment;
  return w;
}

Status GgufWriter::WriteTensor(std::span<const uint8_t> data) {
  if (next_ >= decls_.size()) {
    return Status::Error(fmt::format("WriteTensor called more often than the {} declared tensors", decls_.size()),
                         file_.target_path());
  }
  if (data.size() != sizes_[next_]) {
    return Status::Error(fmt::format("tensor '{}': got {} bytes, its declaration needs {}", decls_[next_].name,
                                     data.size(), sizes_[next_]),
                         file_.target_path());
  }
  QF_RETURN_IF_ERROR(file_.Write(data));
  QF_RETURN_IF_ERROR(file_.WriteZeros(*CheckedAlignUp(data.size(), alignment_) - data.size()));
  ++next_;
  return Status::Ok();
}

Status GgufWriter::Finish() {
  if (next_ != decls_.size()) {
    return Status::Error(fmt::format("only {} of {} declared tensors were written (next: '{}')", next_,
                                     decls_.size(), decls_[next_].name),
                         file_.target_path());
  }
  return file_.Commit();
}

void SetGgufFileTypeKeys(Metadata* metadata, uint32_t llama_ftype, bool any_quantized) {
  metadata->Set("general.file_type", MetaValue::U32(llama_ftype));
  if (any_quantized) metadata->Set("general.quantization_version", MetaValue::U32(kGgmlQuantizationVersion));
}

}  // namespace qforge
