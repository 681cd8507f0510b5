// A GGUF file as a SourceModel: tensors point into the mapping (raw), float tensors also decode to f32.
// Quantized tensors get no read_f32 here; the quant registry wraps them.
#include <algorithm>
#include <cstring>

#include "qforge/core/fp16.h"
#include "qforge/formats/gguf.h"

namespace qforge {
namespace {

// F16/BF16 data may sit at any byte address (alignment 1 is legal), so 16-bit words are copied out
// through a small aligned buffer instead of being read in place.
template <void (*Convert)(const uint16_t*, float*, size_t)>
void Widen16(std::span<const uint8_t> raw, float* dst) {
  constexpr size_t kChunk = 4096;
  uint16_t buf[kChunk];
  const size_t n = raw.size() / 2;
  for (size_t k = 0; k < n; k += kChunk) {
    size_t m = std::min(kChunk, n - k);
    std::memcpy(buf, raw.data() + 2 * k, 2 * m);
    Convert(buf, dst + k, m);
  }
}

std::function<Status(float*)> FloatReader(GgmlType type, std::span<const uint8_t> raw,
                                          std::shared_ptr<MappedFile> keep) {
  switch (type) {
    case GgmlType::F32:
      return [raw, keep](float* dst) {
        std::memcpy(dst, raw.data(), raw.size());
        return Status::Ok();
      };
    case GgmlType::F16:
      return [raw, keep](float* dst) {
        Widen16<F16ToF32Row>(raw, dst);
        return Status::Ok();
      };
    case GgmlType::BF16:
      return [raw, keep](float* dst) {
        Widen16<BF16ToF32Row>(raw, dst);
        return Status::Ok();
      };
    default:
      return nullptr;
  }
}

}  // namespace

StatusOr<SourceModel> OpenGgufSource(const std::string& path) {
  QF_ASSIGN_OR_RETURN(GgufFile gguf, ReadGguf(path));
  SourceModel model;
  model.path = path;
  model.format = "gguf";
  model.metadata = std::move(gguf.metadata);
  model.tensors.reserve(gguf.tensors.size());
  for (size_t i = 0; i < gguf.tensors.size(); ++i) {
    const GgufTensorInfo& info = gguf.tensors[i];
    SourceTensor t;
    t.name = info.name;
    t.ne = info.ne;
    t.type = info.type;
    t.raw = gguf.TensorData(i);
    t.read_f32 = FloatReader(info.type, t.raw, gguf.file);
    model.tensors.push_back(std::move(t));
  }
  model.keep_alive.push_back(gguf.file);
  return model;
}

}  // namespace qforge
