// Forward pass, one token at a time (prefill = repeated decode until a batched matmul path lands).
#include "qforge/runtime/llama_context.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "qforge/core/fp16.h"
#include "qforge/quant/registry.h"

namespace qforge {
namespace {

void RmsNorm(const float* x, const float* w, float* out, int n, float eps) {
  double ss = 0;
  for (int i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float scale = 1.0f / std::sqrt(static_cast<float>(ss / n) + eps);
  for (int i = 0; i < n; ++i) out[i] = x[i] * scale * w[i];
}

// Rotates each head's first n_rot dimensions by position-dependent angles theta_i = pos * base^(-2i/n_rot).
// llama layout pairs (2i, 2i+1); NEOX layout (qwen2) pairs (i, i + n_rot/2).
void Rope(float* v, int n_heads, int head_dim, int n_rot, int pos, float base, bool neox) {
  for (int i = 0; i < n_rot / 2; ++i) {
    const float theta = static_cast<float>(pos) * std::pow(base, -2.0f * static_cast<float>(i) / static_cast<float>(n_rot));
    const float c = std::cos(theta), s = std::sin(theta);
    for (int h = 0; h < n_heads; ++h) {
      float* hv = v + h * head_dim;
      const int a = neox ? i : 2 * i;
      const int b = neox ? i + n_rot / 2 : 2 * i + 1;
      const float x0 = hv[a], x1 = hv[b];
      hv[a] = x0 * c - x1 * s;
      hv[b] = x0 * s + x1 * c;
    }
  }
}

float Silu(float x) { return x / (1.0f + std::exp(-x)); }

}  // namespace

LlamaContext::LlamaContext(const LlamaModel& model, int n_ctx, int threads)
    : model_(model), n_ctx_(n_ctx > 0 ? n_ctx : model.hparams().n_ctx_train), pool_(threads) {
  const LlamaHparams& hp = model.hparams();
  const size_t cache = static_cast<size_t>(hp.n_layer) * n_ctx_ * hp.kv_dim();
  k_cache_.assign(cache, 0);
  v_cache_.assign(cache, 0);
  x_.resize(hp.n_embd);
  xn_.resize(hp.n_embd);
  q_.resize(hp.n_embd);
  k_.resize(hp.kv_dim());
  v_.resize(hp.kv_dim());
  att_.resize(hp.n_embd);
  proj_.resize(std::max(hp.n_embd, hp.n_vocab));
  gate_.resize(hp.n_ff);
  up_.resize(hp.n_ff);
  scores_.resize(static_cast<size_t>(hp.n_head) * n_ctx_);
}

Status LlamaContext::Eval(std::span<const int32_t> tokens, bool all_logits, std::vector<float>* logits) {
  const int n_vocab = model_.hparams().n_vocab;
  if (pos_ + static_cast<int64_t>(tokens.size()) > n_ctx_) {
    return Status::Error(fmt::format("context full: {} + {} tokens > n_ctx {}", pos_, tokens.size(), n_ctx_));
  }
  for (int32_t t : tokens) {
    if (t < 0 || t >= n_vocab) return Status::Error(fmt::format("token id {} out of range [0, {})", t, n_vocab));
  }
  logits->resize(all_logits ? tokens.size() * n_vocab : static_cast<size_t>(n_vocab));
  for (size_t i = 0; i < tokens.size(); ++i) {
    const bool want = all_logits || i + 1 == tokens.size();
    Forward(tokens[i], want ? logits->data() + (all_logits ? i * n_vocab : 0) : nullptr);
  }
  return Status::Ok();
}

void LlamaContext::Linear(const WeightRef& w, const float* x, float* y) {
  w.kernel->prepare(x, w.cols, &act_);
  pool_.Run(w.rows, [&](int64_t r0, int64_t r1) { w.kernel->rows(w.data, w.row_bytes, act_, y + r0, r0, r1); });
}

void LlamaContext::Attention(int layer) {
  const LlamaHparams& hp = model_.hparams();
  const int hd = hp.head_dim, kv_dim = hp.kv_dim(), group = hp.n_head / hp.n_head_kv;
  const size_t base = static_cast<size_t>(layer) * n_ctx_ * kv_dim;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  pool_.Run(hp.n_head, [&](int64_t h0, int64_t h1) {
    std::vector<float> q(hd);
    for (int64_t h = h0; h < h1; ++h) {
      // Q is rounded to F16 before the dot products with the F16 keys, and the attention weights before
      // the product with the F16 values: the same precision llama.cpp's CPU attention uses.
      for (int i = 0; i < hd; ++i) q[i] = F16ToF32(F32ToF16(q_[h * hd + i]));
      const int kvh = static_cast<int>(h) / group;
      float* sc = scores_.data() + h * n_ctx_;
      float max = -INFINITY;
      for (int t = 0; t <= pos_; ++t) {
        const uint16_t* k = k_cache_.data() + base + static_cast<size_t>(t) * kv_dim + kvh * hd;
        float dot = 0;
        for (int i = 0; i < hd; ++i) dot += q[i] * F16ToF32(k[i]);
        sc[t] = dot * scale;
        max = std::max(max, sc[t]);
      }
      double sum = 0;
      for (int t = 0; t <= pos_; ++t) {
        sc[t] = std::exp(sc[t] - max);
        sum += sc[t];
      }
      float* out = att_.data() + h * hd;
      std::fill(out, out + hd, 0.0f);
      const float inv = static_cast<float>(1.0 / sum);
      for (int t = 0; t <= pos_; ++t) {
        const uint16_t* v = v_cache_.data() + base + static_cast<size_t>(t) * kv_dim + kvh * hd;
        const float a = F16ToF32(F32ToF16(sc[t] * inv));
        for (int i = 0; i < hd; ++i) out[i] += a * F16ToF32(v[i]);
      }
    }
  });
}

void LlamaContext::Forward(int32_t token, float* logits) {
  const LlamaHparams& hp = model_.hparams();
  const int e = hp.n_embd, kv_dim = hp.kv_dim();
  const WeightRef& emb = model_.token_embd();
  FindQuantType(emb.type)->decode(emb.data + static_cast<size_t>(token) * emb.row_bytes, x_.data(), e);

  for (int l = 0; l < hp.n_layer; ++l) {
    const LlamaLayer& L = model_.layers()[l];
    RmsNorm(x_.data(), L.attn_norm.data(), xn_.data(), e, hp.rms_eps);
    Observe(l, "attn_qkv", xn_.data(), e);
    Linear(L.wq, xn_.data(), q_.data());
    Linear(L.wk, xn_.data(), k_.data());
    Linear(L.wv, xn_.data(), v_.data());
    for (size_t i = 0; i < L.bq.size(); ++i) q_[i] += L.bq[i];
    for (size_t i = 0; i < L.bk.size(); ++i) k_[i] += L.bk[i];
    for (size_t i = 0; i < L.bv.size(); ++i) v_[i] += L.bv[i];
    Rope(q_.data(), hp.n_head, hp.head_dim, hp.n_rot, pos_, hp.rope_base, hp.neox_rope);
    Rope(k_.data(), hp.n_head_kv, hp.head_dim, hp.n_rot, pos_, hp.rope_base, hp.neox_rope);
    const size_t slot = (static_cast<size_t>(l) * n_ctx_ + pos_) * kv_dim;
    F32ToF16Row(k_.data(), k_cache_.data() + slot, kv_dim);
    F32ToF16Row(v_.data(), v_cache_.data() + slot, kv_dim);
    Attention(l);
    Observe(l, "attn_output", att_.data(), e);
    Linear(L.wo, att_.data(), proj_.data());
    for (int i = 0; i < e; ++i) x_[i] += proj_[i];

    RmsNorm(x_.data(), L.ffn_norm.data(), xn_.data(), e, hp.rms_eps);
    Observe(l, "ffn_gate_up", xn_.data(), e);
    Linear(L.gate, xn_.data(), gate_.data());
    Linear(L.up, xn_.data(), up_.data());
    for (int i = 0; i < hp.n_ff; ++i) gate_[i] = Silu(gate_[i]) * up_[i];
    Observe(l, "ffn_down", gate_.data(), hp.n_ff);
    Linear(L.down, gate_.data(), proj_.data());
    for (int i = 0; i < e; ++i) x_[i] += proj_[i];
  }
  ++pos_;
  if (logits == nullptr) return;
  RmsNorm(x_.data(), model_.output_norm().data(), xn_.data(), e, hp.rms_eps);
  Linear(model_.output(), xn_.data(), logits);
}

}  // namespace qforge
