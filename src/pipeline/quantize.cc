// Streams every tensor through decode -> encode into a GGUF writer. Tensors already stored in their
// target type are copied byte for byte.
#include "qforge/pipeline/quantize.h"

#include <cstdlib>
#include <filesystem>
#include <future>
#include <memory>

#include <fmt/format.h>

#include "qforge/core/huge_pages.h"
#include "qforge/core/mapped_file.h"
#include "qforge/formats/gguf.h"
#include "qforge/pipeline/tensor_codec.h"

namespace qforge {
namespace {

// The encoded bytes of one tensor, reused for the next. Grown only, and without std::vector's growth: that
// copied the old contents and zero-filled the rest, touching every new page twice for bytes the encoder
// overwrites anyway (page faults are expensive under virtualisation: ~31% of a 1-thread Q4_0 run's faults
// came from that copy alone). Where the kernel grants transparent huge pages on request, one fault maps 2 MB.
class EncodeBuffer {
 public:
  // n bytes (contents undefined), or an empty span if the memory cannot be had.
  std::span<uint8_t> Get(size_t n) {
    if (n > capacity_) {
      data_.reset();
      capacity_ = 0;
      data_ = AllocateHugePages(n);
      if (!data_) return {};
      capacity_ = RoundUpToHugePages(n);
    }
    return {data_.get(), n};
  }

 private:
  HugePageBuffer data_;
  size_t capacity_ = 0;
};

}  // namespace

StatusOr<QuantizeReport> PlanQuantization(const SourceModel& model, const Policy& policy) {
  QuantizeReport report;
  report.plan = PlanTensorTypes(policy, model);
  for (size_t i = 0; i < model.tensors.size(); ++i) {
    const SourceTensor& t = model.tensors[i];
    QF_ASSIGN_OR_RETURN(uint64_t bytes, GgufTensorBytes(report.plan[i].type, t.ne));
    report.params += t.numel();
    report.tensor_bytes += bytes;
    report.fallbacks += report.plan[i].fallback ? 1 : 0;
  }
  return report;
}

StatusOr<QuantizeReport> QuantizeToGguf(const SourceModel& model, const Policy& policy, const std::string& out_path,
                                        const QuantizeOptions& options) {
  QF_ASSIGN_OR_RETURN(QuantizeReport report, PlanQuantization(model, policy));

  Metadata meta = model.metadata;
  bool any_quantized = false;
  for (const auto& c : report.plan) any_quantized |= !IsFloatGgmlType(c.type);
  // Always record the quantization version, as llama.cpp's converters do, float files included.
  SetGgufFileTypeKeys(&meta, policy.llama_ftype, /*any_quantized=*/true);
  if (any_quantized) meta.Set("general.quantized_by", MetaValue::String("qforge 0.1.0"));
  for (const auto& [key, value] : options.extra_metadata) meta.Set(key, value);

  std::vector<GgufTensorDecl> decls;
  decls.reserve(model.tensors.size());
  for (size_t i = 0; i < model.tensors.size(); ++i) {
    decls.push_back({model.tensors[i].name, model.tensors[i].ne, report.plan[i].type});
  }
  QF_ASSIGN_OR_RETURN(GgufWriter writer, GgufWriter::Begin(out_path, meta, decls));

  std::vector<uint8_t> bytes;
  // With 2+ threads the write of one encoded tensor overlaps the encoding of the next (a background write
  // from one of two buffers); with -t 1 everything stays on the one thread. Declared after the writer and
  // the buffers, so an early return waits for the write in flight before they go away.
  EncodeBuffer encode_buf[2];
  std::future<Status> pending_write;
  const bool overlap_writes = options.threads > 1;
  auto finish_pending = [&]() -> Status { return pending_write.valid() ? pending_write.get() : Status::Ok(); };
  for (size_t i = 0; i < model.tensors.size(); ++i) {
    const SourceTensor& t = model.tensors[i];
    const GgmlType type = decls[i].type;
    QF_ASSIGN_OR_RETURN(uint64_t nbytes, GgufTensorBytes(type, t.ne));
    bool encoded_by_method = false;
    if (options.encoder != nullptr) {  // every tensor: AWQ also rewrites norms kept in F32
      bytes.resize(nbytes);
      QF_ASSIGN_OR_RETURN(encoded_by_method, options.encoder->Encode(t, type, bytes));
    }
    if (encoded_by_method) {
      QF_RETURN_IF_ERROR(finish_pending());
      QF_RETURN_IF_ERROR(writer.WriteTensor(bytes));
    } else if (type == t.type && !t.raw.empty()) {
      QF_RETURN_IF_ERROR(finish_pending());
      QF_RETURN_IF_ERROR(writer.WriteTensor(t.raw));
    } else {
      // The buffer not being written in the background is the one encoded into.
      const std::span<uint8_t> out = encode_buf[i % 2].Get(nbytes);
      if (out.size() != nbytes)
        return Status::Error(fmt::format("tensor {}: out of memory for its {} encoded bytes", t.name, nbytes));
      const float* importance = nullptr;
      if (options.importance != nullptr) {
        auto it = options.importance->find(t.name);
        if (it != options.importance->end()) {
          if (it->second.size() != t.ne[0])
            return Status::Error(fmt::format("importance for tensor {} has {} entries, the tensor has {} columns",
                                             t.name, it->second.size(), t.ne[0]));
          importance = it->second.data();
        }
      }
      QF_RETURN_IF_ERROR(
          EncodeSourceTensor(t, type, out, importance, options.threads, /*check_finite=*/!options.allow_nonfinite));
      QF_RETURN_IF_ERROR(finish_pending());
      if (overlap_writes) {
        pending_write = std::async(std::launch::async, [&writer, out] { return writer.WriteTensor(out); });
      } else {
        QF_RETURN_IF_ERROR(writer.WriteTensor(out));
      }
    }
    ReleaseMappedPages(t.raw);  // bounded RSS: the input tensor is done
    if (options.progress) options.progress(i + 1, model.tensors.size(), t.name);
  }
  QF_RETURN_IF_ERROR(finish_pending());
  QF_RETURN_IF_ERROR(writer.Finish());
  std::error_code ec;
  report.file_bytes = std::filesystem::file_size(out_path, ec);
  return report;
}

}  // namespace qforge
