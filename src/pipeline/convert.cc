// The convert pipeline: decide each tensor's float type, then stream read -> convert -> write.
#include "qforge/pipeline/convert.h"

#include <filesystem>
#include <vector>

#include <fmt/format.h>

#include "qforge/formats/gguf.h"
#include "qforge/quant/registry.h"

namespace qforge {

uint32_t LlamaFtypeForFloat(GgmlType outtype) {
  switch (outtype) {
    case GgmlType::F16: return 1;    // LLAMA_FTYPE_MOSTLY_F16
    case GgmlType::BF16: return 32;  // LLAMA_FTYPE_MOSTLY_BF16
    default: return 0;               // LLAMA_FTYPE_ALL_F32
  }
}

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

Status EncodeTensor(GgmlType type, const float* src, uint64_t numel, uint64_t row_len, uint8_t* out) {
  const QuantType* q = FindQuantType(type);
  if (q == nullptr || q->encode == nullptr) {
    return Status::Error(fmt::format("type {} has no encoder", GgmlTypeName(type)));
  }
  auto row_bytes = GgmlRowBytes(type, row_len);
  if (!row_bytes) {
    return Status::Error(fmt::format("row length {} is not a multiple of {}'s block size", row_len, GgmlTypeName(type)));
  }
  for (uint64_t r = 0; r < numel / row_len; ++r) {
    q->encode(src + r * row_len, out + r * *row_bytes, static_cast<int64_t>(row_len), nullptr);
  }
  return Status::Ok();
}

namespace {

// 1-D tensors (norms, biases) stay F32: they are tiny and llama.cpp expects them in F32.
GgmlType ChooseType(const SourceTensor& t, GgmlType outtype) {
  return t.ne.size() >= 2 ? outtype : GgmlType::F32;
}

}  // namespace

StatusOr<ConvertReport> ConvertToGguf(const SourceModel& model, const std::string& out_path,
                                      const ConvertOptions& options) {
  if (options.outtype != GgmlType::F32 && options.outtype != GgmlType::F16 && options.outtype != GgmlType::BF16) {
    return Status::Error("convert --outtype must be f32, f16 or bf16 (use `qforge quantize` for block types)");
  }
  Metadata meta = model.metadata;
  SetGgufFileTypeKeys(&meta, LlamaFtypeForFloat(options.outtype), /*any_quantized=*/false);

  std::vector<GgufTensorDecl> decls;
  decls.reserve(model.tensors.size());
  for (const auto& t : model.tensors) decls.push_back({t.name, t.ne, ChooseType(t, options.outtype)});

  QF_ASSIGN_OR_RETURN(GgufWriter writer, GgufWriter::Begin(out_path, meta, decls));
  ConvertReport report;
  std::vector<float> values;
  std::vector<uint8_t> bytes;
  for (size_t i = 0; i < model.tensors.size(); ++i) {
    const SourceTensor& t = model.tensors[i];
    const GgmlType type = decls[i].type;
    const uint64_t n = t.numel();
    if (type == t.type && !t.raw.empty()) {
      QF_RETURN_IF_ERROR(writer.WriteTensor(t.raw));
    } else {
      values.resize(n);
      QF_RETURN_IF_ERROR(ReadTensorF32(t, values.data()));
      QF_ASSIGN_OR_RETURN(uint64_t nbytes, GgufTensorBytes(type, t.ne));
      bytes.resize(nbytes);
      QF_RETURN_IF_ERROR(EncodeTensor(type, values.data(), n, t.ne[0], bytes.data()).WithContext("tensor " + t.name));
      QF_RETURN_IF_ERROR(writer.WriteTensor(bytes));
    }
    report.params += n;
    ++report.tensors;
    if (options.progress) options.progress(i + 1, model.tensors.size(), 0, t.name);
  }
  QF_RETURN_IF_ERROR(writer.Finish());
  std::error_code ec;
  report.file_bytes = std::filesystem::file_size(out_path, ec);
  return report;
}

}  // namespace qforge
