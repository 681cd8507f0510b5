// Reading and writing llama.cpp's importance-matrix files (layouts in formats/imatrix.h and docs/formats.md).
// The GGUF variant reuses the validating GGUF reader and the streaming writer; the legacy .dat has its own
// bounded parser. Everything a file claims (counts, lengths, shapes, values) is checked before use.
#include "qforge/formats/imatrix.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <memory>

#include <fmt/format.h>

#include "qforge/core/atomic_file.h"
#include "qforge/core/byte_reader.h"
#include "qforge/core/mapped_file.h"
#include "qforge/formats/gguf.h"

namespace qforge {
namespace {

constexpr std::string_view kSumsSuffix = ".in_sum2";
constexpr std::string_view kCountsSuffix = ".counts";
constexpr const char* kKeyType = "general.type";
constexpr const char* kKeyDatasets = "imatrix.datasets";
constexpr const char* kKeyChunkCount = "imatrix.chunk_count";
constexpr const char* kKeyChunkSize = "imatrix.chunk_size";
// Counts are token totals stored as F32 in GGUF; above 2^53 a double no longer holds every integer, and no
// real calibration run gets anywhere near it, so a larger value is corruption.
constexpr double kMaxCount = 9007199254740992.0;
// A legacy name longer than this is not a tensor name (GGUF caps names at 63 bytes); refusing it early
// keeps a corrupt length from being taken at face value.
constexpr int32_t kMaxLegacyNameLength = 4096;

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Sums must be finite and non-negative (they are sums of squares); the error names tensor and column.
Status CheckSums(const std::string& tensor, const std::vector<float>& sums, const std::string& file) {
  for (size_t i = 0; i < sums.size(); ++i) {
    const float v = sums[i];
    if (!std::isfinite(v) || v < 0.0f)
      return Status::Error(fmt::format("tensor {}: value {} of its sums of squares is {} (must be finite and >= 0)",
                                       tensor, i, v),
                           file);
  }
  return Status::Ok();
}

StatusOr<int64_t> CheckedCount(const std::string& tensor, size_t index, double v, const std::string& file) {
  if (!std::isfinite(v) || v < 0.0 || v > kMaxCount)
    return Status::Error(fmt::format("tensor {}: count {} is {} (must be a finite number of tokens >= 0)", tensor,
                                     index, v),
                         file);
  return static_cast<int64_t>(std::llround(v));
}

std::vector<float> ReadF32s(std::span<const uint8_t> bytes) {
  std::vector<float> out(bytes.size() / sizeof(float));
  if (!out.empty()) std::memcpy(out.data(), bytes.data(), out.size() * sizeof(float));
  return out;
}

// A tensor's dims as (n_cols, n_mat): ne[0] and the product of the rest (ggml drops trailing 1s on write).
std::pair<uint64_t, uint64_t> ColsAndMats(const GgufTensorInfo& t) {
  uint64_t mats = 1;
  for (size_t d = 1; d < t.ne.size(); ++d) mats *= t.ne[d];  // the GGUF reader already bounded numel
  return {t.ne.empty() ? 0 : t.ne[0], mats};
}

StatusOr<Imatrix> ParseGgufImatrix(std::span<const uint8_t> bytes, const std::string& name) {
  QF_ASSIGN_OR_RETURN(GgufFile gguf, ParseGguf(bytes, name));
  Imatrix im;
  const Metadata& md = gguf.metadata;
  if (const MetaValue* type = md.Find(kKeyType)) {
    if (type->type != GgufValueType::STRING || type->s != "imatrix")
      return Status::Error(fmt::format("not an imatrix file: {} is {}, expected \"imatrix\"", kKeyType,
                                       type->ToString()),
                           name);
  }
  if (const MetaValue* ds = md.Find(kKeyDatasets)) {
    if (ds->type != GgufValueType::ARRAY || ds->elem_type != GgufValueType::STRING)
      return Status::Error(fmt::format("{} must be an array of strings, found {}", kKeyDatasets,
                                       GgufValueTypeName(ds->type)),
                           name);
    for (const MetaValue& v : ds->array) im.datasets.push_back(v.s);
  }
  auto read_u32_key = [&](const char* key, int64_t* out) -> Status {
    const MetaValue* v = md.Find(key);
    if (v == nullptr) return Status::Ok();
    auto i = v->AsInt();
    if (v->type == GgufValueType::ARRAY || v->type == GgufValueType::STRING || !i || *i < 0)
      return Status::Error(fmt::format("{} must be a non-negative integer, found {}", key, v->ToString()), name);
    *out = *i;
    return Status::Ok();
  };
  QF_RETURN_IF_ERROR(read_u32_key(kKeyChunkCount, &im.chunk_count));
  QF_RETURN_IF_ERROR(read_u32_key(kKeyChunkSize, &im.chunk_size));

  // Pair every NAME.in_sum2 with its NAME.counts; other tensors are not imatrix data and are ignored
  // (llama.cpp does the same).
  std::map<std::string, std::pair<const GgufTensorInfo*, size_t>> sums_of, counts_of;
  for (size_t i = 0; i < gguf.tensors.size(); ++i) {
    const GgufTensorInfo& t = gguf.tensors[i];
    std::string_view n = t.name;
    auto* target = EndsWith(n, kSumsSuffix) ? &sums_of : EndsWith(n, kCountsSuffix) ? &counts_of : nullptr;
    if (target == nullptr) continue;
    const size_t suffix = target == &sums_of ? kSumsSuffix.size() : kCountsSuffix.size();
    std::string base(n.substr(0, n.size() - suffix));
    if (base.empty()) return Status::Error(fmt::format("tensor {} has no weight name before its suffix", t.name), name);
    (*target)[base] = {&t, i};  // the GGUF reader rejects duplicate tensor names
  }
  for (const auto& [base, c] : counts_of)
    if (!sums_of.count(base))
      return Status::Error(fmt::format("tensor {}: has {}{} but no {}{}", base, base, kCountsSuffix, base, kSumsSuffix),
                           name);
  if (sums_of.empty())
    return Status::Error("no imatrix entries: the file has no NAME.in_sum2 tensors (is it a model, not an imatrix?)",
                         name);

  for (const auto& [base, s] : sums_of) {
    auto c = counts_of.find(base);
    if (c == counts_of.end())
      return Status::Error(fmt::format("tensor {}: has {}{} but no {}{}", base, base, kSumsSuffix, base, kCountsSuffix),
                           name);
    const GgufTensorInfo& st = *s.first;
    const GgufTensorInfo& ct = *c->second.first;
    if (st.type != GgmlType::F32 || ct.type != GgmlType::F32)
      return Status::Error(fmt::format("tensor {}: sums and counts must be F32, found {} and {}", base,
                                       GgmlTypeName(st.type), GgmlTypeName(ct.type)),
                           name);
    const auto [n_cols, n_mat] = ColsAndMats(st);
    const auto [c_cols, c_mat] = ColsAndMats(ct);
    if (n_cols == 0 || n_mat == 0)
      return Status::Error(fmt::format("tensor {}: {}{} is empty", base, base, kSumsSuffix), name);
    if (c_cols != 1 || c_mat != n_mat)
      return Status::Error(fmt::format("tensor {}: counts have shape [{}, {}], expected [1, {}] (one per matrix of the "
                                       "sums [{}, {}])",
                                       base, c_cols, c_mat, n_mat, n_cols, n_mat),
                           name);
    ImatrixEntry e;
    e.sums = ReadF32s(gguf.TensorData(s.second));
    QF_RETURN_IF_ERROR(CheckSums(base, e.sums, name));
    const std::vector<float> counts = ReadF32s(gguf.TensorData(c->second.second));
    e.counts.reserve(counts.size());
    for (size_t i = 0; i < counts.size(); ++i) {
      QF_ASSIGN_OR_RETURN(int64_t n, CheckedCount(base, i, counts[i], name));
      e.counts.push_back(n);
    }
    im.entries.emplace(base, std::move(e));
  }
  return im;
}

StatusOr<Imatrix> ParseDatImatrix(std::span<const uint8_t> bytes, const std::string& name) {
  ByteReader r(bytes, name);
  Imatrix im;
  im.legacy = true;
  int32_t n_entries = 0;
  QF_RETURN_IF_ERROR(r.Read(&n_entries, "the entry count"));
  // The smallest entry is 17 bytes (length, a 1-byte name, ncall, nval, one value), so a count the file
  // cannot hold is refused before anything is allocated for it.
  if (n_entries < 1 || static_cast<uint64_t>(n_entries) > r.remaining() / 17)
    return Status::Error(fmt::format("entry count {} is impossible for the {} bytes that follow (not an imatrix file?)",
                                     n_entries, r.remaining()),
                         name, 0);
  for (int32_t i = 0; i < n_entries; ++i) {
    const std::string which = fmt::format("entry {} of {}", i + 1, n_entries);
    int32_t len = 0;
    QF_RETURN_IF_ERROR(r.Read(&len, which + ": name length"));
    if (len < 1 || len > kMaxLegacyNameLength)
      return r.Error(fmt::format("{}: name length {} (must be 1..{})", which, len, kMaxLegacyNameLength));
    std::span<const uint8_t> name_bytes;
    QF_RETURN_IF_ERROR(r.ReadBytes(static_cast<uint64_t>(len), &name_bytes, which + ": name"));
    std::string tensor(name_bytes.begin(), name_bytes.end());
    if (tensor.find('\0') != std::string::npos)
      return r.Error(fmt::format("{}: the name contains a NUL byte", which));
    int32_t ncall = 0, nval = 0;
    QF_RETURN_IF_ERROR(r.Read(&ncall, "tensor " + tensor + ": ncall"));
    QF_RETURN_IF_ERROR(r.Read(&nval, "tensor " + tensor + ": value count"));
    if (ncall < 0) return r.Error(fmt::format("tensor {}: ncall is {} (must be >= 0)", tensor, ncall));
    if (nval < 1) return r.Error(fmt::format("tensor {}: value count is {} (must be >= 1)", tensor, nval));
    std::span<const uint8_t> values;
    QF_RETURN_IF_ERROR(r.ReadBytes(static_cast<uint64_t>(nval) * sizeof(float), &values, "tensor " + tensor + ": values"));
    ImatrixEntry e;
    e.sums = ReadF32s(values);
    QF_RETURN_IF_ERROR(CheckSums(tensor, e.sums, name));
    e.counts = {ncall};
    if (!im.entries.emplace(tensor, std::move(e)).second)
      return r.Error(fmt::format("tensor {} appears twice", tensor));
  }
  // The trailer is optional (older files end here); if present it must be complete.
  if (r.remaining() == 0) return im;
  int32_t chunks = 0, len = 0;
  QF_RETURN_IF_ERROR(r.Read(&chunks, "the trailer's chunk count"));
  if (chunks < 0) return r.Error(fmt::format("chunk count is {} (must be >= 0)", chunks));
  im.chunk_count = chunks;
  QF_RETURN_IF_ERROR(r.Read(&len, "the trailer's dataset name length"));
  if (len < 0 || static_cast<uint64_t>(len) > r.remaining())
    return r.Error(fmt::format("dataset name length {} but {} bytes left", len, r.remaining()));
  std::span<const uint8_t> ds;
  QF_RETURN_IF_ERROR(r.ReadBytes(static_cast<uint64_t>(len), &ds, "the dataset name"));
  if (len > 0) im.datasets.emplace_back(ds.begin(), ds.end());
  if (r.remaining() != 0) return r.Error(fmt::format("{} unexpected bytes after the dataset name", r.remaining()));
  return im;
}

Status CheckWritable(const Imatrix& im, const std::string& path) {
  if (im.entries.empty()) return Status::Error("nothing to write: the imatrix has no entries", path);
  for (const auto& [name, e] : im.entries) {
    if (e.counts.empty() || e.sums.empty() || e.sums.size() % e.counts.size() != 0)
      return Status::Error(fmt::format("tensor {}: {} sums do not split into {} matrices", name, e.sums.size(),
                                       e.counts.size()),
                           path);
    for (int64_t c : e.counts)
      if (c < 0) return Status::Error(fmt::format("tensor {}: negative count {}", name, c), path);
  }
  return Status::Ok();
}

std::span<const uint8_t> AsBytes(const std::vector<float>& v) {
  return {reinterpret_cast<const uint8_t*>(v.data()), v.size() * sizeof(float)};
}

}  // namespace

StatusOr<Imatrix> ParseImatrix(std::span<const uint8_t> bytes, const std::string& name) {
  const bool gguf = bytes.size() >= 4 && std::memcmp(bytes.data(), "GGUF", 4) == 0;
  return gguf ? ParseGgufImatrix(bytes, name) : ParseDatImatrix(bytes, name);
}

StatusOr<Imatrix> ReadImatrix(const std::string& path) {
  QF_ASSIGN_OR_RETURN(std::shared_ptr<MappedFile> file, MappedFile::Open(path));
  return ParseImatrix(file->bytes(), path);
}

Status WriteImatrixGguf(const Imatrix& im, const std::string& path) {
  QF_RETURN_IF_ERROR(CheckWritable(im, path));
  Metadata md;
  md.Set(kKeyType, MetaValue::String("imatrix"));
  md.Set(kKeyDatasets, MetaValue::StringArray(im.datasets));
  md.Set(kKeyChunkCount, MetaValue::U32(static_cast<uint32_t>(std::clamp<int64_t>(im.chunk_count, 0, UINT32_MAX))));
  md.Set(kKeyChunkSize, MetaValue::U32(static_cast<uint32_t>(std::clamp<int64_t>(im.chunk_size, 0, UINT32_MAX))));
  std::vector<GgufTensorDecl> decls;
  for (const auto& [name, e] : im.entries) {  // std::map: sorted names, like llama.cpp's deterministic order
    const uint64_t n_mat = e.n_mat();
    decls.push_back({name + std::string(kSumsSuffix), {e.n_cols(), n_mat}, GgmlType::F32});
    decls.push_back({name + std::string(kCountsSuffix), {1, n_mat}, GgmlType::F32});
  }
  QF_ASSIGN_OR_RETURN(GgufWriter writer, GgufWriter::Begin(path, md, decls));
  for (const auto& [name, e] : im.entries) {
    QF_RETURN_IF_ERROR(writer.WriteTensor(AsBytes(e.sums)));
    std::vector<float> counts(e.counts.begin(), e.counts.end());
    QF_RETURN_IF_ERROR(writer.WriteTensor(AsBytes(counts)));
  }
  return writer.Finish();
}

Status WriteImatrixDat(const Imatrix& im, const std::string& path) {
  QF_RETURN_IF_ERROR(CheckWritable(im, path));
  QF_ASSIGN_OR_RETURN(AtomicFile out, AtomicFile::Create(path));
  auto put_i32 = [&](int64_t v, const std::string& what) -> Status {
    if (v < INT32_MIN || v > INT32_MAX)
      return Status::Error(fmt::format("{} = {} does not fit the legacy format's int32", what, v), path);
    const int32_t x = static_cast<int32_t>(v);
    return out.Write(&x, sizeof(x));
  };
  QF_RETURN_IF_ERROR(put_i32(static_cast<int64_t>(im.entries.size()), "the entry count"));
  for (const auto& [name, e] : im.entries) {
    QF_RETURN_IF_ERROR(put_i32(static_cast<int64_t>(name.size()), "a name length"));
    QF_RETURN_IF_ERROR(out.Write(name.data(), name.size()));
    // One ncall for all matrices (the format has no room for more): the largest, in chunks, rounded up so a
    // partial chunk does not become 0 — llama.cpp's rule.
    const int64_t max_count = *std::max_element(e.counts.begin(), e.counts.end());
    const int64_t ncall = im.chunk_size > 0 ? (max_count + im.chunk_size - 1) / im.chunk_size : max_count;
    QF_RETURN_IF_ERROR(put_i32(ncall, "tensor " + name + ": ncall"));
    QF_RETURN_IF_ERROR(put_i32(static_cast<int64_t>(e.sums.size()), "tensor " + name + ": value count"));
    std::vector<float> values(e.sums.size());
    const size_t cols = e.n_cols();
    for (size_t i = 0; i < values.size(); ++i) {
      const int64_t count = e.counts[i / cols];
      // A matrix without data stores mean 1 (llama.cpp's "partial data" convention).
      const double mean = count > 0 ? static_cast<double>(e.sums[i]) / static_cast<double>(count) : 1.0;
      values[i] = static_cast<float>(mean * static_cast<double>(ncall));
    }
    QF_RETURN_IF_ERROR(out.Write(AsBytes(values)));
  }
  QF_RETURN_IF_ERROR(put_i32(im.chunk_count, "the chunk count"));
  const std::string dataset = im.datasets.empty() ? std::string() : im.datasets.back();
  QF_RETURN_IF_ERROR(put_i32(static_cast<int64_t>(dataset.size()), "the dataset name length"));
  QF_RETURN_IF_ERROR(out.Write(dataset.data(), dataset.size()));
  return out.Commit();
}

Status WriteImatrix(const Imatrix& im, const std::string& path) {
  return std::filesystem::path(path).extension() == ".dat" ? WriteImatrixDat(im, path) : WriteImatrixGguf(im, path);
}

std::map<std::string, std::vector<float>> ToImportanceMap(const Imatrix& im) {
  std::map<std::string, std::vector<float>> out;
  for (const auto& [name, e] : im.entries) {
    std::vector<float> mean(e.sums.size(), 1.0f);
    const size_t cols = e.n_cols();
    for (size_t i = 0; i < mean.size() && cols > 0; ++i) {
      const int64_t count = e.counts[i / cols];
      if (count > 0) mean[i] = static_cast<float>(static_cast<double>(e.sums[i]) / static_cast<double>(count));
    }
    out.emplace(name, std::move(mean));
  }
  return out;
}

Status CheckImportanceAgainstModel(const std::map<std::string, std::vector<float>>& importance,
                                   const SourceModel& model, std::vector<std::string>* unknown) {
  for (const auto& [name, values] : importance) {
    const SourceTensor* t = model.FindTensor(name);
    if (t == nullptr) {
      if (unknown) unknown->push_back(name);
      continue;
    }
    const uint64_t cols = t->ne.empty() ? 0 : t->ne[0];
    const uint64_t mats = t->ne.size() > 2 ? t->ne[2] : 1;
    if (values.size() != cols * mats)
      return Status::Error(fmt::format("imatrix entry {} has {} values but the model's tensor has {} columns{}", name,
                                       values.size(), cols, mats > 1 ? fmt::format(" x {} experts", mats) : ""),
                           model.path);
  }
  return Status::Ok();
}

std::vector<std::pair<std::string, MetaValue>> ImatrixProvenance(const Imatrix& im, const std::string& path) {
  std::vector<std::pair<std::string, MetaValue>> kv;
  kv.emplace_back("quantize.imatrix.file", MetaValue::String(path));
  if (!im.datasets.empty()) kv.emplace_back("quantize.imatrix.dataset", MetaValue::String(im.datasets.front()));
  kv.emplace_back("quantize.imatrix.entries_count",
                  MetaValue::U32(static_cast<uint32_t>(std::min<size_t>(im.entries.size(), UINT32_MAX))));
  kv.emplace_back("quantize.imatrix.chunks_count",
                  MetaValue::U32(static_cast<uint32_t>(std::clamp<int64_t>(im.chunk_count, 0, UINT32_MAX))));
  return kv;
}

}  // namespace qforge
