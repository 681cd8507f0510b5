// Binds GGUF tensors to the Llama-family structure, checking every shape against the hyper-parameters
// (a file whose metadata and tensors disagree is rejected here, not discovered as a crash mid-inference).
#include "qforge/runtime/llama_model.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdlib>

#include "qforge/core/huge_pages.h"
#include "qforge/core/mapped_file.h"
#include "qforge/pipeline/tensor_codec.h"

namespace qforge {
namespace {

struct Binder {
  const GgufFile& file;
  const LlamaHparams& hp;

  const GgufTensorInfo* Find(const std::string& name, size_t* index) const {
    for (size_t i = 0; i < file.tensors.size(); ++i) {
      if (file.tensors[i].name == name) {
        *index = i;
        return &file.tensors[i];
      }
    }
    return nullptr;
  }

  Status Error(const std::string& reason) const { return Status::Error(reason, file.file->path()); }

  Status Matrix(const std::string& name, int64_t cols, int64_t rows, WeightRef* out, bool optional = false) const {
    size_t i = 0;
    const GgufTensorInfo* t = Find(name, &i);
    if (t == nullptr) return optional ? Status::Ok() : Error("missing tensor " + name);
    if (t->ne.size() != 2 || static_cast<int64_t>(t->ne[0]) != cols || static_cast<int64_t>(t->ne[1]) != rows) {
      return Error(fmt::format("tensor {} has shape [{}], expected [{}, {}]", name, fmt::join(t->ne, ", "), cols, rows));
    }
    out->name = name;
    out->type = t->type;
    out->data = file.TensorData(i).data();
    out->rows = rows;
    out->cols = cols;
    out->row_bytes = static_cast<size_t>(*GgmlRowBytes(t->type, static_cast<uint64_t>(cols)));
    out->kernel = FindMatVecKernel(t->type);
    if (out->kernel == nullptr) {
      return Error(fmt::format("tensor {}: type {} is not supported by the runtime", name, GgmlTypeName(t->type)));
    }
    return Status::Ok();
  }

  Status Vector(const std::string& name, int64_t n, std::vector<float>* out, bool optional = false) const {
    size_t i = 0;
    const GgufTensorInfo* t = Find(name, &i);
    if (t == nullptr) return optional ? Status::Ok() : Error("missing tensor " + name);
    if (t->ne.size() != 1 || static_cast<int64_t>(t->ne[0]) != n) {
      return Error(fmt::format("tensor {} has shape [{}], expected [{}]", name, fmt::join(t->ne, ", "), n));
    }
    SourceTensor src;
    src.name = name;
    src.ne = t->ne;
    src.type = t->type;
    src.raw = file.TensorData(i);
    if (t->type == GgmlType::F32) {
      out->assign(reinterpret_cast<const float*>(src.raw.data()), reinterpret_cast<const float*>(src.raw.data()) + n);
      return Status::Ok();
    }
    out->resize(static_cast<size_t>(n));
    return ReadTensorF32(src, out->data());
  }
};

StatusOr<LlamaHparams> ReadHparams(const GgufFile& f) {
  const Metadata& m = f.metadata;
  const std::string path = f.file->path();
  LlamaHparams hp;
  auto arch = m.GetString("general.architecture");
  if (!arch) return Status::Error("missing general.architecture", path);
  hp.arch = *arch;
  if (hp.arch != "llama" && hp.arch != "qwen2") {
    return Status::Error(fmt::format("unsupported architecture '{}' (supported: llama, qwen2)", hp.arch), path);
  }
  auto get = [&](const std::string& key, int* out, std::optional<int> def = std::nullopt) -> Status {
    auto v = m.GetInt(hp.arch + "." + key);
    if (!v && !def) return Status::Error("missing metadata " + hp.arch + "." + key, path);
    int64_t x = v ? *v : *def;
    if (x <= 0 || x > (1 << 24)) return Status::Error(fmt::format("{}.{} = {} is out of range", hp.arch, key, x), path);
    *out = static_cast<int>(x);
    return Status::Ok();
  };
  QF_RETURN_IF_ERROR(get("embedding_length", &hp.n_embd));
  QF_RETURN_IF_ERROR(get("feed_forward_length", &hp.n_ff));
  QF_RETURN_IF_ERROR(get("block_count", &hp.n_layer));
  QF_RETURN_IF_ERROR(get("attention.head_count", &hp.n_head));
  QF_RETURN_IF_ERROR(get("attention.head_count_kv", &hp.n_head_kv, hp.n_head));
  QF_RETURN_IF_ERROR(get("context_length", &hp.n_ctx_train, 2048));
  if (hp.n_embd % hp.n_head != 0 || hp.n_head % hp.n_head_kv != 0) {
    return Status::Error(fmt::format("heads ({}, kv {}) do not divide embedding length {}", hp.n_head, hp.n_head_kv,
                                     hp.n_embd), path);
  }
  hp.head_dim = hp.n_embd / hp.n_head;
  QF_RETURN_IF_ERROR(get("rope.dimension_count", &hp.n_rot, hp.head_dim));
  if (hp.n_rot > hp.head_dim || hp.n_rot % 2 != 0) {
    return Status::Error(fmt::format("rope.dimension_count {} is invalid for head size {}", hp.n_rot, hp.head_dim), path);
  }
  hp.rope_base = static_cast<float>(m.GetFloat(hp.arch + ".rope.freq_base").value_or(10000.0));
  hp.rms_eps = static_cast<float>(m.GetFloat(hp.arch + ".attention.layer_norm_rms_epsilon").value_or(1e-5));
  if (!(hp.rope_base > 0) || !(hp.rms_eps >= 0) || !std::isfinite(hp.rope_base)) {
    return Status::Error("invalid rope.freq_base or layer_norm_rms_epsilon", path);
  }
  hp.neox_rope = hp.arch == "qwen2";
  return hp;
}

}  // namespace

StatusOr<LlamaModel> LlamaModel::Load(const std::string& path) {
  QF_ASSIGN_OR_RETURN(GgufFile file, ReadGguf(path));
  return FromGguf(std::move(file));
}

StatusOr<LlamaModel> LlamaModel::FromGguf(GgufFile file) {
  LlamaModel m;
  m.file_ = std::move(file);
  QF_ASSIGN_OR_RETURN(m.hp_, ReadHparams(m.file_));
  LlamaHparams& hp = m.hp_;
  size_t idx = 0;
  Binder b{m.file_, hp};
  const GgufTensorInfo* emb = b.Find("token_embd.weight", &idx);
  if (emb == nullptr || emb->ne.size() != 2) return b.Error("missing or malformed tensor token_embd.weight");
  hp.n_vocab = static_cast<int>(emb->ne[1]);
  QF_RETURN_IF_ERROR(b.Matrix("token_embd.weight", hp.n_embd, hp.n_vocab, &m.token_embd_));
  QF_RETURN_IF_ERROR(b.Vector("output_norm.weight", hp.n_embd, &m.output_norm_));
  QF_RETURN_IF_ERROR(b.Matrix("output.weight", hp.n_embd, hp.n_vocab, &m.output_, /*optional=*/true));
  if (m.output_.data == nullptr) m.output_ = m.token_embd_;  // tied classifier
  const int kv = hp.kv_dim();
  m.layers_.resize(static_cast<size_t>(hp.n_layer));
  for (int l = 0; l < hp.n_layer; ++l) {
    LlamaLayer& L = m.layers_[static_cast<size_t>(l)];
    const std::string p = fmt::format("blk.{}.", l);
    QF_RETURN_IF_ERROR(b.Vector(p + "attn_norm.weight", hp.n_embd, &L.attn_norm));
    QF_RETURN_IF_ERROR(b.Vector(p + "ffn_norm.weight", hp.n_embd, &L.ffn_norm));
    QF_RETURN_IF_ERROR(b.Matrix(p + "attn_q.weight", hp.n_embd, hp.n_embd, &L.wq));
    QF_RETURN_IF_ERROR(b.Matrix(p + "attn_k.weight", hp.n_embd, kv, &L.wk));
    QF_RETURN_IF_ERROR(b.Matrix(p + "attn_v.weight", hp.n_embd, kv, &L.wv));
    QF_RETURN_IF_ERROR(b.Matrix(p + "attn_output.weight", hp.n_embd, hp.n_embd, &L.wo));
    QF_RETURN_IF_ERROR(b.Matrix(p + "ffn_gate.weight", hp.n_embd, hp.n_ff, &L.gate));
    QF_RETURN_IF_ERROR(b.Matrix(p + "ffn_up.weight", hp.n_embd, hp.n_ff, &L.up));
    QF_RETURN_IF_ERROR(b.Matrix(p + "ffn_down.weight", hp.n_ff, hp.n_embd, &L.down));
    QF_RETURN_IF_ERROR(b.Vector(p + "attn_q.bias", hp.n_embd, &L.bq, true));
    QF_RETURN_IF_ERROR(b.Vector(p + "attn_k.bias", kv, &L.bk, true));
    QF_RETURN_IF_ERROR(b.Vector(p + "attn_v.bias", kv, &L.bv, true));
  }
  QF_RETURN_IF_ERROR(m.PackWeights());
  return m;
}

Status LlamaModel::PackWeights() {
  std::vector<WeightRef*> matrices = {&output_};
  for (auto& L : layers_)
    for (WeightRef* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.gate, &L.up, &L.down}) matrices.push_back(w);
  struct Job {
    WeightRef* w;
    const PackedLayout* layout;
    size_t offset, bytes;
  };
  std::vector<Job> jobs;
  size_t total = 0;
  for (WeightRef* w : matrices) {
    const PackedLayout* layout = FindPackedLayout(w->type);
    if (layout == nullptr) continue;
    total = (total + 63) / 64 * 64;
    jobs.push_back({w, layout, total, layout->bytes(w->rows, w->row_bytes)});
    total += jobs.back().bytes;
  }
  if (jobs.empty()) return Status::Ok();
  // One arena for every copy, in 2 MB-aligned huge-page memory when large: the copies are written once and
  // then streamed every token; 4 KB pages cost a fault each on first touch (expensive in a VM) and TLB misses
  // in decode (1-thread Q4_0 decode of the 1.1B benchmark model: 33-35 tok/s without them, 35-47 with, in runs
  // that drifted a lot). One arena rather than one allocation per matrix: a huge page is resident as a whole
  // once touched, so rounding each copy up to 2 MB cost ~200 MB of RSS on that model. A small arena (tiny
  // models) gets cache-line alignment only.
  if (total >= kHugePageBytes) {
    packed_ = AllocateHugePages(total);
  } else {
    packed_.reset(static_cast<uint8_t*>(std::aligned_alloc(64, (total + 63) / 64 * 64)), FreeDeleter());
  }
  if (packed_ == nullptr) {
    return Status::Error(fmt::format("cannot allocate {} bytes for the packed copies of {} weight matrices", total,
                                     jobs.size()), file_.file->path());
  }
  for (const Job& j : jobs) {
    WeightRef* w = j.w;
    j.layout->pack(w->data, w->row_bytes, w->rows, w->cols, packed_.get() + j.offset);
    // The stored rows are no longer read (unless the embedding lookup shares them): drop them from this
    // process's resident memory (they stay in the page cache, and refault if ever touched).
    if (w->data != token_embd_.data) ReleaseMappedPages({w->data, w->row_bytes * static_cast<size_t>(w->rows)});
    w->data = packed_.get() + j.offset;
    w->kernel = j.layout->kernel;
    w->packed = j.layout;
    packed_bytes_ += j.bytes;
  }
  return Status::Ok();
}

uint64_t LlamaModel::WeightBytesPerToken() const {
  // A packed copy is what decode reads (q4_kx16 is 2.8% larger than the stored rows; padding rows count too).
  auto bytes = [](const WeightRef& w) {
    return w.packed != nullptr ? static_cast<uint64_t>(w.packed->bytes(w.rows, w.row_bytes))
                               : static_cast<uint64_t>(w.row_bytes) * w.rows;
  };
  uint64_t total = bytes(output_) + token_embd_.row_bytes;
  for (const auto& L : layers_) {
    for (const WeightRef* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.gate, &L.up, &L.down}) total += bytes(*w);
  }
  return total;
}

void LlamaModel::UseScalarKernels() {
  auto fix = [](WeightRef& w) {
    w.kernel = w.packed != nullptr ? w.packed->spec : FindMatVecKernel(w.type, KernelIsa::kScalar);
  };
  fix(token_embd_);
  fix(output_);
  for (auto& L : layers_) {
    for (WeightRef* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.gate, &L.up, &L.down}) fix(*w);
  }
}

}  // namespace qforge
