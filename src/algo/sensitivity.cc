// Sensitivity measurement (see sensitivity.h): imatrix on calibration chunks, importance-weighted
// reconstruction error per tensor and candidate type, single-tensor KLD probes on an in-memory F32 copy
// of the model, and the damage-scale fit.
//
// Layering note: this file sits in algo/ but uses the pipeline's tensor codec and eval's KLD; the
// measurement is itself a small pipeline (read, encode, run, compare) and nothing below depends on it.
#include "qforge/algo/sensitivity.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>

#include <fmt/format.h>

#include "qforge/algo/calibration_text.h"
#include "qforge/algo/imatrix_collect.h"
#include "qforge/eval/kld.h"
#include "qforge/formats/gguf.h"
#include "qforge/formats/imatrix.h"
#include "qforge/pipeline/tensor_codec.h"
#include "qforge/quant/registry.h"
#include "qforge/runtime/llama_context.h"
#include "qforge/runtime/tokenizer.h"

namespace qforge {
namespace fs = std::filesystem;

std::vector<GgmlType> DefaultCandidateTypes() {
  using GT = GgmlType;
  return {GT::Q2_K, GT::Q3_K, GT::IQ4_XS, GT::Q4_K, GT::Q5_K, GT::Q6_K, GT::Q8_0, GT::Q4_0,
          GT::Q4_1, GT::Q5_0, GT::IQ4_NL, GT::Q5_1, GT::F16, GT::F32};
}

uint64_t ModelFileBytes(const std::string& path) {
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) return fs::file_size(path, ec);
  uint64_t total = 0;  // a Hugging Face folder: every regular file in it
  if (fs::is_directory(path, ec))
    for (const auto& e : fs::directory_iterator(path, ec))
      if (e.is_regular_file(ec)) total += e.file_size(ec);
  return total;
}

std::string TensorKind(const std::string& name) {
  int layer = 0, consumed = 0;
  if (std::sscanf(name.c_str(), "blk.%d.%n", &layer, &consumed) == 1 && consumed > 0) return name.substr(consumed);
  return name;
}

namespace {

// Distinct stored types for a row length (fallbacks applied), in candidate order.
std::vector<GgmlType> StoredCandidates(const std::vector<GgmlType>& wanted, uint64_t ne0) {
  std::vector<GgmlType> out;
  for (GgmlType t : wanted) {
    GgmlType s = FallbackType(t, ne0);
    if (ne0 % GgmlLayout(s).block_size != 0) continue;
    if (FindQuantType(s) == nullptr) continue;
    if (std::find(out.begin(), out.end(), s) == out.end()) out.push_back(s);
  }
  return out;
}

// Encodes with the registry (importance-weighted when given) and decodes back into `decoded`.
Status RoundTrip(GgmlType type, const std::vector<float>& values, uint64_t row_len, const float* importance,
                 int threads, std::vector<uint8_t>* scratch, std::vector<float>* decoded) {
  const QuantType* qt = FindQuantType(type);
  if (qt == nullptr) return Status::Error(fmt::format("type {} has no encoder", GgmlTypeName(type)));
  const uint64_t rows = values.size() / row_len;
  const GgmlTypeLayout lay = GgmlLayout(type);
  const uint64_t row_bytes = row_len / lay.block_size * lay.type_size;
  scratch->resize(rows * row_bytes);
  QF_RETURN_IF_ERROR(EncodeTensor(type, values.data(), values.size(), row_len, scratch->data(), importance, threads));
  decoded->resize(values.size());
  for (uint64_t r = 0; r < rows; ++r)
    qt->decode(scratch->data() + r * row_bytes, decoded->data() + r * row_len, static_cast<int64_t>(row_len));
  return Status::Ok();
}

double WeightedError(const std::vector<float>& a, const std::vector<float>& b, uint64_t row_len,
                     const std::vector<float>* importance) {
  double total = 0;
  for (uint64_t i = 0; i < a.size(); i += row_len) {
    double row = 0;
    for (uint64_t j = 0; j < row_len; ++j) {
      const double d = static_cast<double>(a[i + j]) - b[i + j];
      row += (importance ? (*importance)[j] : 1.0) * d * d;
    }
    total += row;
  }
  return total;
}

StatusOr<std::vector<uint8_t>> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::Error("cannot open", path);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return bytes;
}

// The model with every tensor as F32 in a temporary GGUF (the runtime binds to a mapped GGUF file).
Status WriteF32Gguf(const SourceModel& model, const std::string& path) {
  std::vector<GgufTensorDecl> decls;
  for (const auto& t : model.tensors) decls.push_back({t.name, t.ne, GgmlType::F32});
  Metadata meta = model.metadata;
  SetGgufFileTypeKeys(&meta, 0, /*any_quantized=*/false);
  QF_ASSIGN_OR_RETURN(GgufWriter w, GgufWriter::Begin(path, meta, decls));
  std::vector<float> values;
  for (const auto& t : model.tensors) {
    values.resize(t.numel());
    QF_RETURN_IF_ERROR(ReadTensorF32(t, values.data()).WithContext("tensor " + t.name));
    QF_RETURN_IF_ERROR(w.WriteTensor(
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(values.data()), values.size() * sizeof(float))));
  }
  return w.Finish();
}

Status WriteBytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) return Status::Error("cannot write the temporary probe model", path);
  return Status::Ok();
}

// Removes the temporary files however the measurement ends.
struct TempFiles {
  std::vector<std::string> paths;
  ~TempFiles() {
    std::error_code ec;
    for (const auto& p : paths) fs::remove(p, ec);
  }
};

// All logits of every chunk.
StatusOr<std::vector<std::vector<float>>> RunChunks(const LlamaModel& model,
                                                    const std::vector<std::vector<int32_t>>& chunks, int threads) {
  std::vector<std::vector<float>> out(chunks.size());
  LlamaContext ctx(model, static_cast<int>(chunks.front().size()), threads);
  for (size_t c = 0; c < chunks.size(); ++c) {
    ctx.Reset();
    QF_RETURN_IF_ERROR(ctx.Eval(chunks[c], /*all_logits=*/true, &out[c]));
  }
  return out;
}

double MeanKld(const std::vector<std::vector<float>>& ref, const std::vector<std::vector<float>>& q,
               const std::vector<std::vector<int32_t>>& chunks, int n_vocab) {
  double sum = 0;
  uint64_t n = 0;
  for (size_t c = 0; c < chunks.size(); ++c) {
    for (size_t i = 0; i + 1 < chunks[c].size(); ++i) {
      std::span<const float> r(ref[c].data() + i * n_vocab, n_vocab), s(q[c].data() + i * n_vocab, n_vocab);
      sum += eval::ComparePosition(r, s, chunks[c][i + 1]).kld;
      ++n;
    }
  }
  return n ? sum / static_cast<double>(n) : 0.0;
}

// The probe types of one tensor: its smallest candidate and the one nearest 5.5 bits per weight among the
// others (two points of the error-to-KLD line; float types only when nothing else fits the row).
std::vector<GgmlType> ProbeTypes(const TensorSensitivity& t) {
  std::vector<const CandidateSensitivity*> quant;
  for (const auto& c : t.candidates)
    if (!IsFloatGgmlType(c.type)) quant.push_back(&c);
  if (quant.empty()) {
    for (const auto& c : t.candidates)
      if (c.type == GgmlType::F16) return {GgmlType::F16};
    return {};
  }
  const auto* lowest = *std::min_element(quant.begin(), quant.end(), [](auto* a, auto* b) { return a->bytes < b->bytes; });
  const CandidateSensitivity* second = nullptr;
  for (const auto* c : quant) {
    if (c->bytes == lowest->bytes) continue;
    const double d = std::fabs(GgmlLayout(c->type).bits_per_weight() - 5.5);
    if (second == nullptr || d < std::fabs(GgmlLayout(second->type).bits_per_weight() - 5.5)) second = c;
  }
  if (second == nullptr) return {lowest->type};
  return {lowest->type, second->type};
}

}  // namespace

StatusOr<Measurement> MeasureSensitivity(const SourceModel& model, const std::string& model_path,
                                         const MeasureOptions& options) {
  auto say = [&](const std::string& s) {
    if (options.progress) options.progress(s);
  };
  Measurement m;
  m.model_path = model_path;
  m.model_file_bytes = ModelFileBytes(model_path);
  m.calib_file = options.calib_file;
  const std::vector<GgmlType> wanted = options.candidates.empty() ? DefaultCandidateTypes() : options.candidates;

  // The runtime model: an F32 copy in a temporary file. Each probe writes a copy of its bytes with one
  // tensor replaced (small models: a few MB per probe) and runs that.
  TempFiles temps;
  const fs::path dir = fs::temp_directory_path();
  const std::string base_path = (dir / fmt::format("qforge-measure-{}.gguf", ::getpid())).string();
  const std::string probe_path = (dir / fmt::format("qforge-measure-{}-probe.gguf", ::getpid())).string();
  temps.paths = {base_path, probe_path};
  QF_RETURN_IF_ERROR(WriteF32Gguf(model, base_path));
  QF_ASSIGN_OR_RETURN(std::vector<uint8_t> buffer, ReadWholeFile(base_path));
  QF_ASSIGN_OR_RETURN(GgufFile base_file, ReadGguf(base_path));
  const GgufFile layout = base_file;  // tensor offsets for the probes
  QF_ASSIGN_OR_RETURN(LlamaModel base, LlamaModel::FromGguf(std::move(base_file)));
  QF_ASSIGN_OR_RETURN(Tokenizer tok, Tokenizer::FromMetadata(model.metadata));
  CalibrationOptions copt;
  copt.file = options.calib_file;
  copt.tokens = options.calib_tokens;
  copt.ctx = options.calib_ctx;
  QF_ASSIGN_OR_RETURN(auto chunks, LoadCalibrationChunks(tok, copt));
  m.chunks = static_cast<int>(chunks.size());
  m.chunk_tokens = options.calib_ctx;

  say(fmt::format("imatrix over {} chunks of {} tokens", chunks.size(), options.calib_ctx));
  ImatrixCollectOptions iopt;
  iopt.threads = options.threads;
  iopt.dataset = options.calib_file;
  QF_ASSIGN_OR_RETURN(Imatrix imatrix, CollectImatrix(base, chunks, iopt));
  const auto importance = ToImportanceMap(imatrix);

  // Reconstruction error of every candidate.
  const std::vector<bool> mask = QuantizableTensors(model);
  std::vector<float> values, decoded;
  std::vector<uint8_t> scratch;
  size_t n_quant = std::count(mask.begin(), mask.end(), true), done = 0;
  for (size_t i = 0; i < model.tensors.size(); ++i) {
    if (!mask[i]) continue;
    const SourceTensor& t = model.tensors[i];
    TensorSensitivity ts;
    ts.name = t.name;
    ts.ne = t.ne;
    values.resize(t.numel());
    QF_RETURN_IF_ERROR(ReadTensorF32(t, values.data()).WithContext("tensor " + t.name));
    auto it = importance.find(t.name);
    const std::vector<float>* imp = it != importance.end() && it->second.size() == t.ne[0] ? &it->second : nullptr;
    for (GgmlType type : StoredCandidates(wanted, t.ne[0])) {
      CandidateSensitivity c;
      c.type = type;
      QF_ASSIGN_OR_RETURN(c.bytes, GgufTensorBytes(type, t.ne));
      if (type != GgmlType::F32) {
        QF_RETURN_IF_ERROR(RoundTrip(type, values, t.ne[0], imp ? imp->data() : nullptr, options.threads, &scratch,
                                     &decoded));
        c.error = WeightedError(values, decoded, t.ne[0], imp);
      }
      ts.candidates.push_back(c);
    }
    m.tensors.push_back(std::move(ts));
    say(fmt::format("error {}/{} {}", ++done, n_quant, t.name));
  }

  // Single-tensor probes on an even sample of the tensors.
  QF_ASSIGN_OR_RETURN(auto ref_logits, RunChunks(base, chunks, options.threads));
  std::vector<size_t> sample;
  const size_t n = m.tensors.size(), cap = static_cast<size_t>(std::max(0, options.max_probe_tensors));
  for (size_t k = 0; k < std::min(n, cap); ++k) sample.push_back(n <= cap ? k : k * n / cap);
  size_t n_probes = 0;
  for (size_t k : sample) n_probes += ProbeTypes(m.tensors[k]).size();
  size_t probe_no = 0;
  for (size_t k : sample) {
    const TensorSensitivity& ts = m.tensors[k];
    const SourceTensor* t = model.FindTensor(ts.name);
    size_t gi = 0;
    while (gi < layout.tensors.size() && layout.tensors[gi].name != ts.name) ++gi;
    if (t == nullptr || gi == layout.tensors.size()) return Status::Error("tensor " + ts.name + " vanished");
    const uint64_t offset = layout.data_offset + layout.tensors[gi].offset;
    if (layout.tensors[gi].type != GgmlType::F32 || offset + t->numel() * sizeof(float) > buffer.size())
      return Status::Error("tensor " + ts.name + " is not where the F32 copy should hold it", base_path);
    values.resize(t->numel());
    QF_RETURN_IF_ERROR(ReadTensorF32(*t, values.data()));
    auto it = importance.find(ts.name);
    const float* imp = it != importance.end() && it->second.size() == t->ne[0] ? it->second.data() : nullptr;
    for (GgmlType type : ProbeTypes(ts)) {
      QF_RETURN_IF_ERROR(RoundTrip(type, values, t->ne[0], imp, options.threads, &scratch, &decoded));
      std::memcpy(buffer.data() + offset, decoded.data(), decoded.size() * sizeof(float));
      QF_RETURN_IF_ERROR(WriteBytes(probe_path, buffer));
      QF_ASSIGN_OR_RETURN(GgufFile pf, ReadGguf(probe_path));
      QF_ASSIGN_OR_RETURN(LlamaModel pm, LlamaModel::FromGguf(std::move(pf)));
      QF_ASSIGN_OR_RETURN(auto q_logits, RunChunks(pm, chunks, options.threads));
      KldProbe p;
      p.tensor = ts.name;
      p.type = type;
      for (const auto& c : ts.candidates)
        if (c.type == type) p.error = c.error;
      p.kld = MeanKld(ref_logits, q_logits, chunks, base.hparams().n_vocab);
      m.probes.push_back(p);
      say(fmt::format("probe {}/{} {} {}: error {:.4g}, KLD {:.4g}", ++probe_no, n_probes, ts.name,
                      GgmlTypeName(type), p.error, p.kld));
    }
    std::memcpy(buffer.data() + offset, values.data(), values.size() * sizeof(float));  // restore
  }
  FitDamageScales(&m);
  return m;
}

Measurement PriorMeasurement(const SourceModel& model, const std::vector<GgmlType>& candidates) {
  Measurement m;
  m.model_path = model.path;
  const auto wanted = candidates.empty() ? DefaultCandidateTypes() : candidates;
  const auto mask = QuantizableTensors(model);
  for (size_t i = 0; i < model.tensors.size(); ++i) {
    if (!mask[i]) continue;
    const SourceTensor& t = model.tensors[i];
    TensorSensitivity ts;
    ts.name = t.name;
    ts.ne = t.ne;
    ts.scale = 1.0;
    ts.scale_source = "prior";
    for (GgmlType type : StoredCandidates(wanted, t.ne[0])) {
      CandidateSensitivity c;
      c.type = type;
      auto bytes = GgufTensorBytes(type, t.ne);
      if (!bytes.ok()) continue;
      c.bytes = *bytes;
      c.error = type == GgmlType::F32 ? 0.0
                                      : static_cast<double>(t.numel()) * std::pow(4.0, -GgmlLayout(type).bits_per_weight());
      c.damage = c.error;
      ts.candidates.push_back(c);
    }
    m.tensors.push_back(std::move(ts));
  }
  m.global_scale = 1.0;
  return m;
}

void FitDamageScales(Measurement* m) {
  struct Acc {
    double sum = 0;
    int n = 0;
  };
  std::map<std::string, Acc> by_tensor, by_kind;
  Acc all;
  std::vector<const KldProbe*> valid;
  for (const auto& p : m->probes) {
    if (!(p.error > 0) || !(p.kld > 0) || !std::isfinite(p.error) || !std::isfinite(p.kld)) continue;
    const double lr = std::log(p.kld / p.error);
    by_tensor[p.tensor].sum += lr, by_tensor[p.tensor].n++;
    by_kind[TensorKind(p.tensor)].sum += lr, by_kind[TensorKind(p.tensor)].n++;
    all.sum += lr, all.n++;
    valid.push_back(&p);
  }
  m->global_scale = all.n ? std::exp(all.sum / all.n) : 1.0;
  m->kind_scale.clear();
  for (const auto& [k, a] : by_kind) m->kind_scale[k] = std::exp(a.sum / a.n);
  for (auto& t : m->tensors) {
    if (auto it = by_tensor.find(t.name); it != by_tensor.end()) {
      t.scale = std::exp(it->second.sum / it->second.n);
      t.scale_source = "probed";
    } else if (auto k = m->kind_scale.find(TensorKind(t.name)); k != m->kind_scale.end()) {
      t.scale = k->second;
      t.scale_source = "kind";
    } else {
      t.scale = m->global_scale;
      t.scale_source = all.n ? "global" : "uncalibrated";
    }
    for (auto& c : t.candidates) c.damage = t.scale * c.error;
  }

  // Leave-one-out quality: each probe predicted without itself, from its kind (or all probes) and from
  // its own tensor's other probe.
  std::vector<double> pred_kind, meas, abs_kind, abs_tensor;
  for (const KldProbe* p : valid) {
    const double lr = std::log(p->kld / p->error);
    const Acc& k = by_kind[TensorKind(p->tensor)];
    double loo;
    if (k.n > 1) loo = (k.sum - lr) / (k.n - 1);
    else if (all.n > 1) loo = (all.sum - lr) / (all.n - 1);
    else continue;
    pred_kind.push_back(std::log(p->error) + loo);
    meas.push_back(std::log(p->kld));
    abs_kind.push_back(std::fabs(loo - lr));
    const Acc& t = by_tensor[p->tensor];
    if (t.n > 1) abs_tensor.push_back(std::fabs((t.sum - lr) / (t.n - 1) - lr));
  }
  auto median = [](std::vector<double> v) {
    if (v.empty()) return 0.0;
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
  };
  m->fit_median_abs_log_ratio_kind = median(abs_kind);
  m->fit_median_abs_log_ratio_tensor = median(abs_tensor);
  m->fit_log_corr_kind = 0;
  if (pred_kind.size() > 2) {
    const double n = static_cast<double>(pred_kind.size());
    const double mx = std::accumulate(pred_kind.begin(), pred_kind.end(), 0.0) / n;
    const double my = std::accumulate(meas.begin(), meas.end(), 0.0) / n;
    double sxy = 0, sxx = 0, syy = 0;
    for (size_t i = 0; i < pred_kind.size(); ++i) {
      sxy += (pred_kind[i] - mx) * (meas[i] - my);
      sxx += (pred_kind[i] - mx) * (pred_kind[i] - mx);
      syy += (meas[i] - my) * (meas[i] - my);
    }
    if (sxx > 0 && syy > 0) m->fit_log_corr_kind = sxy / std::sqrt(sxx * syy);
  }
}

}  // namespace qforge
