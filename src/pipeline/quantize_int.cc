// Integer schemes to safetensors: plan (which tensors are quantizable), quantize, write, and read back.
#include "qforge/pipeline/quantize_int.h"

#include <charconv>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "qforge/algo/policy.h"
#include "qforge/pipeline/tensor_codec.h"

namespace qforge {
namespace {

struct Stored {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

template <typename T>
std::vector<uint8_t> ToBytes(const std::vector<T>& v) {
  std::vector<uint8_t> out(v.size() * sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), v.data(), out.size());
  return out;
}

const SafetensorsTensor* Find(const SafetensorsFile& f, const std::string& name) {
  for (const auto& t : f.tensors)
    if (t.name == name) return &t;
  return nullptr;
}

Status CheckTensor(const SafetensorsTensor* t, const std::string& name, DType dtype,
                   const std::vector<int64_t>& shape) {
  if (t == nullptr) return Status::Error(fmt::format("tensor {} is missing", name));
  if (t->dtype != dtype)
    return Status::Error(fmt::format("tensor {} is {}, expected {}", name, DTypeName(t->dtype), DTypeName(dtype)));
  if (t->shape != shape)
    return Status::Error(fmt::format("tensor {} has shape [{}], expected [{}]", name, fmt::join(t->shape, ", "),
                                     fmt::join(shape, ", ")));
  uint64_t n = DTypeSize(dtype);
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  if (t->data.size() != n)
    return Status::Error(fmt::format("tensor {} holds {} bytes, expected {}", name, t->data.size(), n));
  return Status::Ok();
}

}  // namespace

StatusOr<QuantizeIntReport> QuantizeToIntSafetensors(const SourceModel& model, const IntScheme& scheme,
                                                     const std::string& output,
                                                     const QuantizeIntOptions& options) {
  // Which tensors are quantizable is the policy's decision (2-D weights; norms and 1-D stay F32).
  auto policy = MakePolicy("Q8_0", ModelFactsFromSource(model));
  if (!policy.ok()) return policy.status();
  const std::vector<TensorChoice> plan = PlanTensorTypes(*policy, model);
  if (plan.size() != model.tensors.size()) return Status::Error("internal: plan size differs from the tensor count");

  QuantizeIntReport report;
  report.scheme = scheme;
  std::map<std::string, std::string> meta = {
      {"format", "qforge-int"}, {"qforge.scheme", scheme.name}, {"qforge.source", model.path}};
  if (auto arch = model.metadata.GetString("general.architecture")) meta["general.architecture"] = *arch;
  std::vector<Stored> stored;
  std::vector<float> values;
  for (size_t i = 0; i < model.tensors.size(); ++i) {
    const SourceTensor& t = model.tensors[i];
    const bool quantize = plan[i].wanted != GgmlType::F32;
    const uint64_t n = t.numel();
    values.resize(n);
    Status st = ReadTensorF32(t, values.data());
    if (!st.ok()) return st.WithContext("tensor " + t.name);
    IntTensorReport tr;
    tr.name = t.name;
    tr.quantized = quantize;
    tr.cols = t.ne.empty() ? 1 : t.ne[0];
    tr.rows = tr.cols ? n / tr.cols : 0;
    if (quantize) {
      auto q = QuantizeInt(scheme, values.data(), tr.rows, tr.cols);
      if (!q.ok()) return q.status().WithContext("tensor " + t.name);
      const auto rows = static_cast<int64_t>(tr.rows);
      const auto groups = static_cast<int64_t>(scheme.GroupsPerRow(tr.cols));
      const auto scale_rows = static_cast<int64_t>(scheme.ScaleRows(tr.rows));
      stored.push_back({t.name + ".qweight", scheme.bits == 8 && scheme.symmetric ? DType::kI8 : DType::kU8,
                        {rows, static_cast<int64_t>(scheme.PackedRowBytes(tr.cols))}, std::move(q->qweight)});
      stored.push_back({t.name + ".scales", DType::kF32, {scale_rows, groups}, ToBytes(q->scales)});
      if (!scheme.symmetric)
        stored.push_back({t.name + ".zeros", DType::kU8, {scale_rows, groups}, std::move(q->zeros)});
      // int4 packs an odd row length to the same width as the next even one: record the true length.
      if (scheme.bits == 4 && tr.cols % 2 == 1) meta["qforge.cols." + t.name] = std::to_string(tr.cols);
      tr.bytes = scheme.StorageBytes(tr.rows, tr.cols);
      report.quantized_params += n;
      report.quantized_bytes += tr.bytes;
    } else {
      std::vector<int64_t> shape;
      for (auto it = t.ne.rbegin(); it != t.ne.rend(); ++it) shape.push_back(static_cast<int64_t>(*it));
      stored.push_back({t.name, DType::kF32, std::move(shape), ToBytes(values)});
      tr.bytes = n * 4;
    }
    report.params += n;
    report.tensor_bytes += tr.bytes;
    report.tensors.push_back(std::move(tr));
    if (options.progress) options.progress(i + 1, model.tensors.size(), t.name);
  }

  std::vector<SafetensorsTensorOut> outs;
  outs.reserve(stored.size());
  for (const auto& s : stored) outs.push_back({s.name, s.dtype, s.shape, s.bytes});
  QF_RETURN_IF_ERROR(WriteSafetensors(output, outs, meta));
  std::error_code ec;
  const auto size = std::filesystem::file_size(output, ec);
  if (ec) return Status::Error("cannot stat the written file: " + ec.message(), output);
  report.file_bytes = size;
  return report;
}

StatusOr<std::vector<float>> ReadIntSafetensorsTensor(const SafetensorsFile& file, const std::string& name,
                                                      uint64_t* rows_out, uint64_t* cols_out) {
  const SafetensorsTensor* qw = Find(file, name + ".qweight");
  if (qw == nullptr) {
    const SafetensorsTensor* t = Find(file, name);
    if (t == nullptr) return Status::Error(fmt::format("no tensor {} (nor {}.qweight)", name, name));
    if (t->dtype != DType::kF32) return Status::Error(fmt::format("tensor {} is not F32", name));
    std::vector<float> out(t->data.size() / 4);
    if (!out.empty()) std::memcpy(out.data(), t->data.data(), out.size() * 4);
    uint64_t cols = t->shape.empty() ? 1 : static_cast<uint64_t>(t->shape.back());
    if (rows_out) *rows_out = cols ? out.size() / cols : 0;
    if (cols_out) *cols_out = cols;
    return out;
  }
  auto it = file.metadata.find("qforge.scheme");
  if (it == file.metadata.end()) return Status::Error("__metadata__ has no qforge.scheme");
  QF_ASSIGN_OR_RETURN(IntScheme scheme, ParseIntScheme(it->second));
  if (qw->shape.size() != 2 || qw->shape[0] < 0 || qw->shape[1] < 0)
    return Status::Error(fmt::format("tensor {}.qweight is not 2-D", name));
  // cols comes from the packed width: for int4 an odd column count is ambiguous, so scales decide it.
  const uint64_t rows = static_cast<uint64_t>(qw->shape[0]);
  const uint64_t packed = static_cast<uint64_t>(qw->shape[1]);
  uint64_t cols = packed;
  if (scheme.bits == 4) {
    cols = packed * 2;
    // An odd row length packs to the same width as the even one after it; the writer then records it in
    // __metadata__ as "qforge.cols.<name>".
    auto c = file.metadata.find("qforge.cols." + name);
    if (c != file.metadata.end()) {
      uint64_t v = 0;
      auto [p, ec] = std::from_chars(c->second.data(), c->second.data() + c->second.size(), v);
      if (ec != std::errc() || p != c->second.data() + c->second.size() || v + 1 != cols)
        return Status::Error(fmt::format("__metadata__ qforge.cols.{} = '{}' does not fit a packed width of {}", name,
                                         c->second, packed));
      cols = v;
    }
  }
  const auto groups = static_cast<int64_t>(scheme.GroupsPerRow(cols));
  const auto scale_rows = static_cast<int64_t>(scheme.ScaleRows(rows));
  QF_RETURN_IF_ERROR(CheckTensor(qw, name + ".qweight", scheme.bits == 8 && scheme.symmetric ? DType::kI8 : DType::kU8,
                                 {static_cast<int64_t>(rows), static_cast<int64_t>(packed)}));
  QF_RETURN_IF_ERROR(CheckTensor(Find(file, name + ".scales"), name + ".scales", DType::kF32, {scale_rows, groups}));
  IntQuantized q;
  q.scheme = scheme;
  q.rows = rows;
  q.cols = cols;
  q.qweight.assign(qw->data.begin(), qw->data.end());
  const SafetensorsTensor* sc = Find(file, name + ".scales");
  q.scales.resize(sc->data.size() / 4);
  if (!q.scales.empty()) std::memcpy(q.scales.data(), sc->data.data(), sc->data.size());
  if (!scheme.symmetric) {
    const SafetensorsTensor* z = Find(file, name + ".zeros");
    QF_RETURN_IF_ERROR(CheckTensor(z, name + ".zeros", DType::kU8, {scale_rows, groups}));
    q.zeros.assign(z->data.begin(), z->data.end());
  }
  std::vector<float> out(rows * cols);
  QF_RETURN_IF_ERROR(DequantizeInt(q, out.data()));
  if (rows_out) *rows_out = rows;
  if (cols_out) *cols_out = cols;
  return out;
}

}  // namespace qforge
