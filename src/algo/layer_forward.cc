// The batched float32 block forward used by calibration. Matrix products go through Eigen (single
// threaded: no OpenMP), so results do not depend on any thread count.
#include "qforge/algo/layer_forward.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include <Eigen/Dense>
#include <fmt/format.h>

#include "qforge/pipeline/tensor_codec.h"

namespace qforge {
namespace {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstStrided = Eigen::Map<const RowMat, 0, Eigen::OuterStride<>>;
using Strided = Eigen::Map<RowMat, 0, Eigen::OuterStride<>>;

void RmsNormRows(const float* x, const float* w, float* out, int64_t n, int cols, float eps) {
  for (int64_t t = 0; t < n; ++t) {
    const float* xr = x + t * cols;
    float* o = out + t * cols;
    double ss = 0;
    for (int i = 0; i < cols; ++i) ss += static_cast<double>(xr[i]) * xr[i];
    const float scale = 1.0f / std::sqrt(static_cast<float>(ss / cols) + eps);
    for (int i = 0; i < cols; ++i) o[i] = xr[i] * scale * w[i];
  }
}

// Rotates the first n_rot dimensions of each head of every token (position = row index).
void RopeRows(float* v, int64_t n, int n_heads, const BlockShape& s) {
  const int width = n_heads * s.head_dim;
  for (int i = 0; i < s.n_rot / 2; ++i) {
    const double inv_freq = std::pow(static_cast<double>(s.rope_base), -2.0 * i / s.n_rot);
    const int a = s.neox_rope ? i : 2 * i;
    const int b = s.neox_rope ? i + s.n_rot / 2 : 2 * i + 1;
    for (int64_t t = 0; t < n; ++t) {
      const double theta = static_cast<double>(t) * inv_freq;
      const float c = static_cast<float>(std::cos(theta)), sn = static_cast<float>(std::sin(theta));
      float* row = v + t * width;
      for (int h = 0; h < n_heads; ++h) {
        float* hv = row + h * s.head_dim;
        const float x0 = hv[a], x1 = hv[b];
        hv[a] = x0 * c - x1 * sn;
        hv[b] = x0 * sn + x1 * c;
      }
    }
  }
}

void AddBias(float* y, int64_t n, const std::vector<float>& bias) {
  if (bias.empty()) return;
  const int64_t cols = static_cast<int64_t>(bias.size());
  for (int64_t t = 0; t < n; ++t)
    for (int64_t i = 0; i < cols; ++i) y[t * cols + i] += bias[static_cast<size_t>(i)];
}

// Causal multi-head attention with grouped K/V heads: out[n x n_embd].
void CausalAttention(const BlockShape& s, const float* q, const float* k, const float* v, int64_t n, float* out) {
  const int hd = s.head_dim, e = s.n_embd, kv = s.kv_dim(), group = s.n_head / s.n_head_kv;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  RowMat scores(n, n);
  for (int h = 0; h < s.n_head; ++h) {
    const int kvh = h / group;
    ConstStrided Q(q + h * hd, n, hd, Eigen::OuterStride<>(e));
    ConstStrided K(k + kvh * hd, n, hd, Eigen::OuterStride<>(kv));
    ConstStrided V(v + kvh * hd, n, hd, Eigen::OuterStride<>(kv));
    scores.noalias() = Q * K.transpose();
    for (int64_t i = 0; i < n; ++i) {
      float* row = scores.data() + i * n;
      float max = -INFINITY;
      for (int64_t j = 0; j <= i; ++j) {
        row[j] *= scale;
        max = std::max(max, row[j]);
      }
      double sum = 0;
      for (int64_t j = 0; j <= i; ++j) {
        row[j] = std::exp(row[j] - max);
        sum += row[j];
      }
      const float inv = static_cast<float>(1.0 / sum);
      for (int64_t j = 0; j <= i; ++j) row[j] *= inv;
      for (int64_t j = i + 1; j < n; ++j) row[j] = 0.0f;  // causal mask
    }
    Strided O(out + h * hd, n, hd, Eigen::OuterStride<>(e));
    O.noalias() = scores * V;
  }
}

float Silu(float x) { return x / (1.0f + std::exp(-x)); }

StatusOr<int> PositiveInt(const Metadata& m, const std::string& key, const std::string& path, std::optional<int> def) {
  auto v = m.GetInt(key);
  if (!v && !def) return Status::Error("missing metadata " + key, path);
  const int64_t x = v ? *v : *def;
  if (x <= 0 || x > (1 << 24)) return Status::Error(fmt::format("{} = {} is out of range", key, x), path);
  return static_cast<int>(x);
}

Status ReadShaped(const SourceModel& model, const std::string& name, std::vector<uint64_t> ne, std::vector<float>* out,
                  bool optional = false) {
  const SourceTensor* t = model.FindTensor(name);
  if (t == nullptr) return optional ? Status::Ok() : Status::Error("missing tensor " + name, model.path);
  if (t->ne != ne) {
    return Status::Error(fmt::format("tensor {} has shape [{}], expected [{}]", name, fmt::join(t->ne, ", "),
                                     fmt::join(ne, ", ")),
                         model.path);
  }
  out->resize(t->numel());
  return ReadTensorF32(*t, out->data()).WithContext("tensor " + name);
}

}  // namespace

void LinearRows(const float* x, int64_t n, int64_t cols, const float* w, int64_t rows, float* y) {
  Eigen::Map<const RowMat> X(x, n, cols);
  Eigen::Map<const RowMat> W(w, rows, cols);
  Eigen::Map<RowMat> Y(y, n, rows);
  Y.noalias() = X * W.transpose();
}

StatusOr<BlockShape> ReadBlockShape(const SourceModel& model) {
  const Metadata& m = model.metadata;
  BlockShape s;
  auto arch = m.GetString("general.architecture");
  if (!arch) return Status::Error("missing general.architecture", model.path);
  if (*arch != "llama" && *arch != "qwen2") {
    return Status::Error(fmt::format("calibration supports llama and qwen2 blocks, not '{}'", *arch), model.path);
  }
  s.arch = *arch;
  const std::string p = s.arch + ".";
  QF_ASSIGN_OR_RETURN(s.n_embd, PositiveInt(m, p + "embedding_length", model.path, std::nullopt));
  QF_ASSIGN_OR_RETURN(s.n_ff, PositiveInt(m, p + "feed_forward_length", model.path, std::nullopt));
  QF_ASSIGN_OR_RETURN(s.n_layer, PositiveInt(m, p + "block_count", model.path, std::nullopt));
  QF_ASSIGN_OR_RETURN(s.n_head, PositiveInt(m, p + "attention.head_count", model.path, std::nullopt));
  QF_ASSIGN_OR_RETURN(s.n_head_kv, PositiveInt(m, p + "attention.head_count_kv", model.path, s.n_head));
  if (s.n_embd % s.n_head != 0 || s.n_head % s.n_head_kv != 0) {
    return Status::Error(fmt::format("heads ({}, kv {}) do not divide embedding length {}", s.n_head, s.n_head_kv,
                                     s.n_embd),
                         model.path);
  }
  s.head_dim = s.n_embd / s.n_head;
  QF_ASSIGN_OR_RETURN(s.n_rot, PositiveInt(m, p + "rope.dimension_count", model.path, s.head_dim));
  if (s.n_rot > s.head_dim || s.n_rot % 2 != 0) {
    return Status::Error(fmt::format("rope.dimension_count {} is invalid for head size {}", s.n_rot, s.head_dim),
                         model.path);
  }
  s.rope_base = static_cast<float>(m.GetFloat(p + "rope.freq_base").value_or(10000.0));
  s.rms_eps = static_cast<float>(m.GetFloat(p + "attention.layer_norm_rms_epsilon").value_or(1e-5));
  if (!(s.rope_base > 0) || !std::isfinite(s.rope_base) || !(s.rms_eps >= 0)) {
    return Status::Error("invalid rope.freq_base or layer_norm_rms_epsilon", model.path);
  }
  s.neox_rope = s.arch == "qwen2";
  const SourceTensor* emb = model.FindTensor("token_embd.weight");
  if (emb == nullptr || emb->ne.size() != 2 || emb->ne[0] != static_cast<uint64_t>(s.n_embd) || emb->ne[1] == 0 ||
      emb->ne[1] > (1u << 24)) {
    return Status::Error("missing token_embd.weight or its shape disagrees with embedding_length", model.path);
  }
  s.n_vocab = static_cast<int>(emb->ne[1]);
  return s;
}

StatusOr<BlockWeights> ReadBlockWeights(const SourceModel& model, const BlockShape& s, int layer) {
  if (layer < 0 || layer >= s.n_layer) return Status::Error(fmt::format("layer {} out of range", layer), model.path);
  const std::string p = fmt::format("blk.{}.", layer);
  const uint64_t e = static_cast<uint64_t>(s.n_embd), kv = static_cast<uint64_t>(s.kv_dim()),
                 ff = static_cast<uint64_t>(s.n_ff);
  BlockWeights w;
  QF_RETURN_IF_ERROR(ReadShaped(model, p + "attn_norm.weight", {e}, &w.attn_norm));
  QF_RETURN_IF_ERROR(ReadShaped(model, p + "ffn_norm.weight", {e}, &w.ffn_norm));
  QF_RETURN_IF_ERROR(ReadShaped(model, p + "attn_q.weight", {e, e}, &w.wq));
  QF_RETURN_IF_ERROR(ReadShaped(model, p + "attn_k.weight", {e, kv}, &w.wk));
  QF_RETURN_IF_ERROR(ReadShaped(model, p + "attn_v.weight", {e, kv}, &w.wv));
  QF_RETURN_IF_ERROR(ReadShaped(model, p + "attn_output.weight", {e, e}, &w.wo));
  QF_RETURN_IF_ERROR(ReadShaped(model, p + "ffn_gate.weight", {e, ff}, &w.gate));
  QF_RETURN_IF_ERROR(ReadShaped(model, p + "ffn_up.weight", {e, ff}, &w.up));
  QF_RETURN_IF_ERROR(ReadShaped(model, p + "ffn_down.weight", {ff, e}, &w.down));
  QF_RETURN_IF_ERROR(ReadShaped(model, p + "attn_q.bias", {e}, &w.bq, /*optional=*/true));
  QF_RETURN_IF_ERROR(ReadShaped(model, p + "attn_k.bias", {kv}, &w.bk, /*optional=*/true));
  QF_RETURN_IF_ERROR(ReadShaped(model, p + "attn_v.bias", {kv}, &w.bv, /*optional=*/true));
  return w;
}

void BlockForward(const BlockShape& s, const BlockWeights& w, float* hidden, int64_t n, BlockInputs* inputs) {
  const int e = s.n_embd, kv = s.kv_dim(), ff = s.n_ff;
  std::vector<float> xn(static_cast<size_t>(n) * e), q(static_cast<size_t>(n) * e), k(static_cast<size_t>(n) * kv),
      v(static_cast<size_t>(n) * kv), att(static_cast<size_t>(n) * e), proj(static_cast<size_t>(n) * e);
  RmsNormRows(hidden, w.attn_norm.data(), xn.data(), n, e, s.rms_eps);
  LinearRows(xn.data(), n, e, w.wq.data(), e, q.data());
  LinearRows(xn.data(), n, e, w.wk.data(), kv, k.data());
  LinearRows(xn.data(), n, e, w.wv.data(), kv, v.data());
  AddBias(q.data(), n, w.bq);
  AddBias(k.data(), n, w.bk);
  AddBias(v.data(), n, w.bv);
  RopeRows(q.data(), n, s.n_head, s);
  RopeRows(k.data(), n, s.n_head_kv, s);
  CausalAttention(s, q.data(), k.data(), v.data(), n, att.data());
  LinearRows(att.data(), n, e, w.wo.data(), e, proj.data());
  for (size_t i = 0; i < proj.size(); ++i) hidden[i] += proj[i];
  if (inputs != nullptr) {
    inputs->attn_in = xn;
    inputs->attn_out = att;
  }

  RmsNormRows(hidden, w.ffn_norm.data(), xn.data(), n, e, s.rms_eps);
  std::vector<float> gate(static_cast<size_t>(n) * ff), up(static_cast<size_t>(n) * ff);
  LinearRows(xn.data(), n, e, w.gate.data(), ff, gate.data());
  LinearRows(xn.data(), n, e, w.up.data(), ff, up.data());
  for (size_t i = 0; i < gate.size(); ++i) gate[i] = Silu(gate[i]) * up[i];
  LinearRows(gate.data(), n, ff, w.down.data(), e, proj.data());
  for (size_t i = 0; i < proj.size(); ++i) hidden[i] += proj[i];
  if (inputs != nullptr) {
    inputs->ffn_in = std::move(xn);
    inputs->ffn_hidden = std::move(gate);
  }
}

}  // namespace qforge
