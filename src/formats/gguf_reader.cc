// The GGUF v3 reader: header, metadata and tensor infos parsed from untrusted bytes with every count,
// length, offset and size checked against the file before use (gguf_checks.cc holds the rules the writer shares).
// Memory stays proportional to the file: a count is only trusted once count * its smallest encoding fits
// in the bytes left, so the worst case is about sizeof(MetaValue) per file byte (arrays of u8).
#include <cstring>
#include <string>
#include <unordered_set>

#include <fmt/format.h>

#include "gguf_internal.h"
#include "utf8_check.h"
#include "qforge/core/byte_reader.h"
#include "qforge/core/checked.h"
#include "qforge/formats/gguf.h"

namespace qforge {
namespace {

constexpr char kMagic[4] = {'G', 'G', 'U', 'F'};
constexpr uint32_t kVersion = 3;
constexpr uint64_t kMinKvBytes = 8 + 4 + 1;                 // empty key, value type, 1-byte value
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 8 + 4 + 8;  // empty name, n_dims, one dim, type, offset

class Parser {
 public:
  Parser(std::span<const uint8_t> bytes, const std::string& name) : r_(bytes, name), name_(name) {}
  Status Parse(GgufFile* out);

 private:
  Status Error(uint64_t offset, std::string reason) const {
    return Status::Error(std::move(reason), name_, static_cast<int64_t>(offset));
  }
  Status ReadHeader(GgufFile* out, uint64_t* n_tensors, uint64_t* n_kv);
  Status CheckVersion(uint32_t version) const;
  Status CheckCount(uint64_t count, uint64_t min_bytes, uint64_t at, const char* what) const;
  Status ReadMetadata(uint64_t n_kv, Metadata* metadata);
  Status ReadString(std::string* out, std::string_view what);
  Status ReadValueType(GgufValueType* out, std::string_view what);
  Status ReadValue(GgufValueType type, int depth, MetaValue* out);
  Status ReadArray(int depth, MetaValue* out);
  Status ReadAlignment(const Metadata& metadata, uint32_t* alignment) const;
  Status ReadTensorInfo(uint32_t alignment, GgufTensorInfo* out);

  template <typename T>
  Status ReadUnsigned(uint64_t* out, std::string_view what) {
    T v{};
    QF_RETURN_IF_ERROR(r_.Read(&v, what));
    *out = v;
    return Status::Ok();
  }
  template <typename T>
  Status ReadSigned(int64_t* out, std::string_view what) {
    T v{};
    QF_RETURN_IF_ERROR(r_.Read(&v, what));
    *out = v;
    return Status::Ok();
  }

  ByteReader r_;
  std::string name_;
  uint64_t alignment_offset_ = 0;  // where the general.alignment pair starts (for its errors)
};

Status Parser::Parse(GgufFile* out) {
  uint64_t n_tensors = 0, n_kv = 0;
  QF_RETURN_IF_ERROR(ReadHeader(out, &n_tensors, &n_kv));
  QF_RETURN_IF_ERROR(ReadMetadata(n_kv, &out->metadata));
  QF_RETURN_IF_ERROR(ReadAlignment(out->metadata, &out->alignment));

  uint64_t at = r_.offset();
  QF_RETURN_IF_ERROR(CheckCount(n_tensors, kMinTensorInfoBytes, at, "tensor infos"));
  std::unordered_set<std::string> names;
  std::vector<uint64_t> info_offsets;
  out->tensors.reserve(n_tensors);
  info_offsets.reserve(n_tensors);
  for (uint64_t k = 0; k < n_tensors; ++k) {
    info_offsets.push_back(r_.offset());
    GgufTensorInfo info;
    QF_RETURN_IF_ERROR(ReadTensorInfo(out->alignment, &info));
    if (!names.insert(info.name).second) {
      return Error(info_offsets.back(), fmt::format("duplicate tensor name '{}'", info.name));
    }
    out->tensors.push_back(std::move(info));
  }
  auto data_offset = CheckedAlignUp(r_.offset(), out->alignment);
  if (!data_offset) return Error(r_.offset(), "data section offset overflows");
  out->data_offset = *data_offset;
  return gguf_internal::CheckDataLayout(*out, info_offsets, name_);
}

Status Parser::ReadHeader(GgufFile* out, uint64_t* n_tensors, uint64_t* n_kv) {
  std::span<const uint8_t> magic;
  QF_RETURN_IF_ERROR(r_.ReadBytes(4, &magic, "magic"));
  if (std::memcmp(magic.data(), kMagic, 4) != 0) {
    return Error(0, fmt::format("not a GGUF file: magic is {:02x} {:02x} {:02x} {:02x}, expected 47 47 55 46 "
                                "(\"GGUF\")", magic[0], magic[1], magic[2], magic[3]));
  }
  QF_RETURN_IF_ERROR(r_.Read(&out->version, "version"));
  QF_RETURN_IF_ERROR(CheckVersion(out->version));
  QF_RETURN_IF_ERROR(r_.Read(n_tensors, "tensor_count"));
  QF_RETURN_IF_ERROR(r_.Read(n_kv, "kv_count"));
  QF_RETURN_IF_ERROR(CheckCount(*n_tensors, kMinTensorInfoBytes, 8, "tensor infos (tensor_count)"));
  QF_RETURN_IF_ERROR(CheckCount(*n_kv, kMinKvBytes, 16, "metadata pairs (kv_count)"));
  auto both = CheckedAdd(*n_tensors * kMinTensorInfoBytes, *n_kv * kMinKvBytes);  // each fits (checked above)
  if (!both || *both > r_.remaining()) {
    return Error(8, fmt::format("tensor_count {} and kv_count {} together need more than the {} bytes left",
                                *n_tensors, *n_kv, r_.remaining()));
  }
  return Status::Ok();
}

Status Parser::CheckVersion(uint32_t version) const {
  // A byte-swapped small version has its payload in the high half and zeros in the low half.
  if ((version & 0xFFFF) == 0) {
    return Error(4, fmt::format("version field 0x{:08x} has its low 16 bits zero: endianness mismatch "
                                "(the file was written with the other byte order)", version));
  }
  if (version == 1) return Error(4, "GGUF version 1 is not supported (obsolete 32-bit counts); only version 3");
  if (version == 2) return Error(4, "GGUF version 2 is not supported; only version 3 (re-convert the model)");
  if (version != kVersion) {
    return Error(4, fmt::format("GGUF version {} is not supported; only version 3", version));
  }
  return Status::Ok();
}

Status Parser::CheckCount(uint64_t count, uint64_t min_bytes, uint64_t at, const char* what) const {
  auto need = CheckedMul(count, min_bytes);
  if (!need || *need > r_.remaining()) {
    return Error(at, fmt::format("{} {} cannot fit: they need at least {} bytes each and only {} bytes are left",
                                 count, what, min_bytes, r_.remaining()));
  }
  return Status::Ok();
}

Status Parser::ReadMetadata(uint64_t n_kv, Metadata* metadata) {
  std::unordered_set<std::string> keys;
  for (uint64_t k = 0; k < n_kv; ++k) {
    uint64_t at = r_.offset();
    std::string key;
    QF_RETURN_IF_ERROR(ReadString(&key, "metadata key"));
    if (!keys.insert(key).second) return Error(at, fmt::format("duplicate metadata key '{}'", key));
    if (key == "general.alignment") alignment_offset_ = at;
    GgufValueType type;
    QF_RETURN_IF_ERROR(ReadValueType(&type, "metadata value type").WithContext("key '" + key + "'"));
    MetaValue value;
    QF_RETURN_IF_ERROR(ReadValue(type, 0, &value).WithContext("key '" + key + "'"));
    metadata->Set(key, std::move(value));
  }
  return Status::Ok();
}

Status Parser::ReadString(std::string* out, std::string_view what) {
  uint64_t at = r_.offset();
  uint64_t length = 0;
  QF_RETURN_IF_ERROR(r_.Read(&length, what));
  if (length > r_.remaining()) {
    return Error(at, fmt::format("{} length {} is larger than the {} bytes left in the file", what, length,
                                 r_.remaining()));
  }
  std::span<const uint8_t> bytes;
  QF_RETURN_IF_ERROR(r_.ReadBytes(length, &bytes, what));
  out->assign(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  // GGUF strings are UTF-8; other bytes would surface later as a JSON printer's exception or mojibake.
  const size_t bad = formats_internal::FindInvalidUtf8(*out);
  if (bad != std::string_view::npos) {
    return Error(at + 8 + bad, fmt::format("{} is not valid UTF-8 (byte 0x{:02x} at index {} of its {} bytes)", what,
                                           static_cast<uint8_t>((*out)[bad]), bad, out->size()));
  }
  return Status::Ok();
}

Status Parser::ReadValueType(GgufValueType* out, std::string_view what) {
  uint64_t at = r_.offset();
  uint32_t code = 0;
  QF_RETURN_IF_ERROR(r_.Read(&code, what));
  if (!IsValidGgufValueType(code)) return Error(at, fmt::format("invalid {} {} (valid: 0..12)", what, code));
  *out = static_cast<GgufValueType>(code);
  return Status::Ok();
}

Status Parser::ReadValue(GgufValueType type, int depth, MetaValue* out) {
  out->type = type;
  switch (type) {
    case GgufValueType::U8: return ReadUnsigned<uint8_t>(&out->u, "u8 value");
    case GgufValueType::U16: return ReadUnsigned<uint16_t>(&out->u, "u16 value");
    case GgufValueType::U32: return ReadUnsigned<uint32_t>(&out->u, "u32 value");
    case GgufValueType::U64: return ReadUnsigned<uint64_t>(&out->u, "u64 value");
    case GgufValueType::I8: return ReadSigned<int8_t>(&out->i, "i8 value");
    case GgufValueType::I16: return ReadSigned<int16_t>(&out->i, "i16 value");
    case GgufValueType::I32: return ReadSigned<int32_t>(&out->i, "i32 value");
    case GgufValueType::I64: return ReadSigned<int64_t>(&out->i, "i64 value");
    case GgufValueType::F32: {
      // float -> double -> float is exact, so rewriting keeps the bits (except a signalling NaN's,
      // which the conversion quiets).
      float v;
      QF_RETURN_IF_ERROR(r_.Read(&v, "f32 value"));
      out->f = v;
      return Status::Ok();
    }
    case GgufValueType::F64: return r_.Read(&out->f, "f64 value");
    case GgufValueType::BOOL: {
      uint64_t at = r_.offset();
      QF_RETURN_IF_ERROR(ReadUnsigned<uint8_t>(&out->u, "bool value"));
      if (out->u > 1) return Error(at, fmt::format("bool value {} is neither 0 nor 1", out->u));
      return Status::Ok();
    }
    case GgufValueType::STRING: return ReadString(&out->s, "string value");
    case GgufValueType::ARRAY: return ReadArray(depth + 1, out);
  }
  return Error(r_.offset(), "invalid value type");  // unreachable: the type was validated
}

Status Parser::ReadArray(int depth, MetaValue* out) {
  uint64_t at = r_.offset();
  if (depth > kGgufMaxArrayDepth) {
    return Error(at, fmt::format("arrays nested deeper than {} levels", kGgufMaxArrayDepth));
  }
  QF_RETURN_IF_ERROR(ReadValueType(&out->elem_type, "array element type"));
  uint64_t count_at = r_.offset();
  uint64_t count = 0;
  QF_RETURN_IF_ERROR(r_.Read(&count, "array count"));
  uint64_t min_bytes = gguf_internal::MinValueBytes(out->elem_type);
  auto need = CheckedMul(count, min_bytes);
  if (!need || *need > r_.remaining()) {
    return Error(count_at, fmt::format("array count {} of {} cannot fit in the {} bytes left", count,
                                       GgufValueTypeName(out->elem_type), r_.remaining()));
  }
  out->array.resize(count);
  for (uint64_t k = 0; k < count; ++k) QF_RETURN_IF_ERROR(ReadValue(out->elem_type, depth, &out->array[k]));
  return Status::Ok();
}

Status Parser::ReadAlignment(const Metadata& metadata, uint32_t* alignment) const {
  const MetaValue* v = metadata.Find("general.alignment");
  if (v == nullptr) {
    *alignment = kGgufDefaultAlignment;
    return Status::Ok();
  }
  if (v->type != GgufValueType::U32) {
    return Error(alignment_offset_, fmt::format("general.alignment must be a u32, not {}", GgufValueTypeName(v->type)));
  }
  Status s = gguf_internal::CheckAlignment(v->u);
  if (!s.ok()) return Error(alignment_offset_, s.reason());
  *alignment = static_cast<uint32_t>(v->u);
  return Status::Ok();
}

Status Parser::ReadTensorInfo(uint32_t alignment, GgufTensorInfo* out) {
  uint64_t at = r_.offset();
  QF_RETURN_IF_ERROR(ReadString(&out->name, "tensor name"));
  uint32_t n_dims = 0;
  QF_RETURN_IF_ERROR(r_.Read(&n_dims, "tensor n_dims"));
  if (n_dims < 1 || n_dims > 4) {
    return Error(at, fmt::format("tensor '{}': n_dims {} is not in 1..4", out->name, n_dims));
  }
  out->ne.resize(n_dims);
  for (uint32_t k = 0; k < n_dims; ++k) QF_RETURN_IF_ERROR(r_.Read(&out->ne[k], "tensor dimension"));
  uint32_t type_id = 0;
  QF_RETURN_IF_ERROR(r_.Read(&type_id, "tensor type"));
  uint64_t offset_at = r_.offset();
  QF_RETURN_IF_ERROR(r_.Read(&out->offset, "tensor offset"));

  auto nbytes = gguf_internal::CheckTensorShape(out->name, out->ne, type_id);
  if (!nbytes.ok()) return Error(at, nbytes.status().reason());
  out->nbytes = *nbytes;
  out->type = static_cast<GgmlType>(type_id);
  if (out->offset % alignment != 0) {
    return Error(offset_at, fmt::format("tensor '{}': offset {} is not a multiple of the alignment {}", out->name,
                                        out->offset, alignment));
  }
  return Status::Ok();
}

}  // namespace

StatusOr<GgufFile> ParseGguf(std::span<const uint8_t> bytes, const std::string& name) {
  GgufFile out;
  out.bytes = bytes;
  Parser parser(bytes, name);
  QF_RETURN_IF_ERROR(parser.Parse(&out));
  return out;
}

StatusOr<GgufFile> ReadGguf(const std::string& path) {
  QF_ASSIGN_OR_RETURN(std::shared_ptr<MappedFile> file, MappedFile::Open(path));
  QF_ASSIGN_OR_RETURN(GgufFile out, ParseGguf(file->bytes(), path));
  out.file = std::move(file);
  return out;
}

std::span<const uint8_t> GgufFile::TensorData(size_t i) const {
  const GgufTensorInfo& t = tensors.at(i);
  return bytes.subspan(static_cast<size_t>(data_offset + t.offset), static_cast<size_t>(t.nbytes));
}

}  // namespace qforge
