// Forward pass over batches of tokens: every linear layer runs as a matrix product over the batch's rows
// (each weight block is loaded once for all of them), attention is causal within the batch, and everything
// else is per token. Decoding is a batch of one. Results do not depend on how the tokens are batched: the
// batched kernels are bit-identical to per-token matrix-vector products, and attention and the element-wise
// steps are the same per-token code either way.
#include "qforge/runtime/llama_context.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>

#include <fmt/format.h>

#include "attention.h"
#include "qforge/core/fp16.h"
#include "qforge/quant/registry.h"
#include "silu.h"

namespace qforge {
namespace {

// Tokens per batch: large enough that weights are read once per 64 tokens, small enough that the batch's
// activations (64 x 5632 floats for a 1B model's FFN) stay cache-friendly.
constexpr int kBatch = 64;

// Decode runs this between two parallel matrix products, on one thread while the others wait: it is on the
// critical path of every layer. One running sum made a chain of n dependent double additions (~4 us for 2048
// values on the Xeon here); 8 partial sums are independent chains the compiler can also vectorise. Each square
// of a float is exact in double, so only the order of the additions changes.
void RmsNorm(const float* x, const float* w, float* out, int n, float eps) {
  double part[8] = {};
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int k = 0; k < 8; ++k) part[k] += static_cast<double>(x[i + k]) * x[i + k];
  }
  double ss = 0;
  for (; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  for (const double p : part) ss += p;
  const float scale = 1.0f / std::sqrt(static_cast<float>(ss / n) + eps);
  for (int i = 0; i < n; ++i) out[i] = x[i] * scale * w[i];
}

// The rotation angles of one position, theta_i = pos * base^(-2i/n_rot) for i < n_rot / 2, as cosines and
// sines: computed once per token and batch, not once per layer and per Q and K (2 * n_layer times).
void RopeAngles(int n_rot, int pos, float base, float* cos_out, float* sin_out) {
  for (int i = 0; i < n_rot / 2; ++i) {
    const float theta = static_cast<float>(pos) * std::pow(base, -2.0f * static_cast<float>(i) / static_cast<float>(n_rot));
    cos_out[i] = std::cos(theta);
    sin_out[i] = std::sin(theta);
  }
}

// Rotates each head's first n_rot dimensions by the angles of RopeAngles.
// llama layout pairs (2i, 2i+1); NEOX layout (qwen2) pairs (i, i + n_rot/2).
// Head by head, each head's pairs in order (memory order); it runs on one thread between decode's parallel
// steps, as RmsNorm does.
void Rope(float* v, int n_heads, int head_dim, int n_rot, const float* cos_i, const float* sin_i, bool neox) {
  const int half = n_rot / 2;
  for (int h = 0; h < n_heads; ++h) {
    float* hv = v + h * head_dim;
    if (neox) {
      for (int i = 0; i < half; ++i) {
        const float x0 = hv[i], x1 = hv[i + half];
        hv[i] = x0 * cos_i[i] - x1 * sin_i[i];
        hv[i + half] = x0 * sin_i[i] + x1 * cos_i[i];
      }
    } else {
      for (int i = 0; i < half; ++i) {
        const float x0 = hv[2 * i], x1 = hv[2 * i + 1];
        hv[2 * i] = x0 * cos_i[i] - x1 * sin_i[i];
        hv[2 * i + 1] = x0 * sin_i[i] + x1 * cos_i[i];
      }
    }
  }
}

}  // namespace

LlamaContext::LlamaContext(const LlamaModel& model, int n_ctx, int threads)
    : model_(model), n_ctx_(n_ctx > 0 ? n_ctx : model.hparams().n_ctx_train), pool_(threads) {
  const LlamaHparams& hp = model.hparams();
  const size_t cache = static_cast<size_t>(hp.n_layer) * n_ctx_ * hp.kv_dim();
  k_cache_buf_ = AllocateHugePages(cache * sizeof(uint16_t));
  v_cache_buf_ = AllocateHugePages(cache * sizeof(uint16_t));
  if (k_cache_buf_ == nullptr || v_cache_buf_ == nullptr) throw std::bad_alloc();  // as the vectors it replaced
  // Zeroed (and so touched) up front, as before: no page faults in the middle of a token.
  std::memset(k_cache(), 0, cache * sizeof(uint16_t));
  std::memset(v_cache(), 0, cache * sizeof(uint16_t));
  const size_t b = kBatch;
  x_.resize(b * hp.n_embd);
  xn_.resize(b * hp.n_embd);
  q_.resize(b * hp.n_embd);
  k_.resize(b * hp.kv_dim());
  v_.resize(b * hp.kv_dim());
  att_.resize(b * hp.n_embd);
  proj_.resize(b * hp.n_embd);
  gate_.resize(b * hp.n_ff);
  up_.resize(b * hp.n_ff);
  acts_.resize(3 * b);  // a group has at most three matrices (q, k, v), each may need its own format
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
  for (size_t b = 0; b < tokens.size(); b += kBatch) {
    const size_t n = std::min<size_t>(kBatch, tokens.size() - b);
    const bool last = b + n == tokens.size();
    if (all_logits) {
      ForwardBatch(tokens.subspan(b, n), 0, logits->data() + b * n_vocab);
    } else {
      ForwardBatch(tokens.subspan(b, n), last ? static_cast<int>(n) - 1 : static_cast<int>(n), logits->data());
    }
  }
  return Status::Ok();
}

void LlamaContext::Linear(std::span<const LinearOut> outs, const float* x, size_t ldx, int n, bool swiglu) {
  // Quantize each input row once per activation format the group's matrices need.
  const PreparedActivation* acts[3];
  using Prepare = void (*)(const float*, int64_t, PreparedActivation*);
  Prepare prepared[3] = {nullptr, nullptr, nullptr};
  for (size_t m = 0; m < outs.size(); ++m) {
    const MatVecKernel* k = outs[m].w->kernel;
    size_t slot = 0;
    while (prepared[slot] != nullptr && prepared[slot] != k->prepare) ++slot;
    if (prepared[slot] == nullptr) {
      prepared[slot] = k->prepare;
      // A batch's rows are quantized in parallel (serial, they were ~1% of a 1-thread prefill); one row
      // (decode) is too little work to share.
      PreparedActivation* a = &acts_[slot * kBatch];
      const int64_t cols = outs[m].w->cols;
      pool_.RunChunks(n, 4, [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t) k->prepare(x + t * ldx, cols, &a[t]);
      });
    }
    acts[m] = &acts_[slot * kBatch];
  }
  // One parallel region for the whole group, in units of `grain` rows of one matrix. Each thread runs its own
  // contiguous range of the units, a piece at a time, and then helps with what others have left (RunRanges):
  // in decode each thread streams one long stretch of the weights. A piece is 4 units in decode, the 4 groups
  // of 16 rows the packed decode kernels read at once as 4 streams, whose prefetches at the end of a piece run
  // on into the thread's next one (packed_x16_avx512.cc). Before, runs of units shrinking down to one unit
  // (~20 per job, each restarting its streams cold, the smallest read by one stream) were handed out to
  // whichever thread came: 2-thread Q4_0 decode of the 1.1B benchmark model read 27.3-28.1 GB/s that way,
  // against 28.3-29.9 with one fixed half per thread and 28.3-28.9 with pieces of 4 units (the same minutes).
  const int64_t grain = 16;
  const int64_t piece = n == 1 ? 4 : 1;  // units; prefill's units are each a tile of work for all n tokens
  if (swiglu) {
    // gate and up over the same rows in one unit, then SiLU(gate) * up on those rows: the elementwise step
    // (an exp per element, n_ff of them per token) runs inside the parallel region instead of after it.
    const WeightRef &gate = *outs[0].w, &up = *outs[1].w;
    pool_.RunRanges((gate.rows + grain - 1) / grain, piece, [&](int64_t u0, int64_t u1) {
      const int64_t r0 = u0 * grain, r1 = std::min(gate.rows, u1 * grain);
      MatMulRows(*gate.kernel, gate.data, gate.row_bytes, acts[0], n, outs[0].y, outs[0].ldy, r0, r1);
      MatMulRows(*up.kernel, up.data, up.row_bytes, acts[1], n, outs[1].y, outs[1].ldy, r0, r1);
      for (int t = 0; t < n; ++t) SiluTimes(outs[0].y + t * outs[0].ldy + r0, outs[1].y + t * outs[1].ldy + r0, r1 - r0);
    });
    return;
  }
  int64_t units[4] = {0, 0, 0, 0};
  for (size_t m = 0; m < outs.size(); ++m) units[m + 1] = units[m] + (outs[m].w->rows + grain - 1) / grain;
  pool_.RunRanges(units[outs.size()], piece, [&](int64_t u0, int64_t u1) {
    // The run's part in each matrix is one contiguous range of rows.
    for (size_t m = 0; m < outs.size(); ++m) {
      const int64_t b = std::max(u0, units[m]), e = std::min(u1, units[m + 1]);
      if (b >= e) continue;
      const WeightRef& w = *outs[m].w;
      const int64_t r0 = (b - units[m]) * grain, r1 = std::min(w.rows, (e - units[m]) * grain);
      MatMulRows(*w.kernel, w.data, w.row_bytes, acts[m], n, outs[m].y, outs[m].ldy, r0, r1);
    }
  });
}

void LlamaContext::Attention(int layer, int n) {
  const LlamaHparams& hp = model_.hparams();
  const int hd = hp.head_dim, kv_dim = hp.kv_dim(), group = hp.n_head / hp.n_head_kv, e = hp.n_embd;
  const uint16_t* k_layer = k_cache() + static_cast<size_t>(layer) * n_ctx_ * kv_dim;
  const uint16_t* v_layer = v_cache() + static_cast<size_t>(layer) * n_ctx_ * kv_dim;
  const size_t head_stride = static_cast<size_t>(n_ctx_) * hd;  // from one KV head's positions to the next's
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const size_t n_pos = static_cast<size_t>(pos_ + n);
  // Work items are (token, KV head) (attention.h), in parallel; token t attends to positions 0..pos_+t (causal).
  // Everything, the F16 -> F32 conversion of the cached keys and values included, happens inside the parallel
  // region: converting the whole layer's cache up front was serial work that grew with the context (5% of a
  // 1-thread decode token).
  pool_.RunChunks(static_cast<int64_t>(n) * hp.n_head_kv, 1, [&](int64_t i0, int64_t i1) {
    // Per thread, kept between calls: a fresh zero-filled vector per chunk was 32 KB of memset per decode item
    // at a 1024-token context.
    thread_local std::vector<float> scratch;
    scratch.resize(std::max(scratch.size(), AttentionScratchFloats(group, hd, static_cast<int>(n_pos))));
    for (int64_t item = i0; item < i1; ++item) {
      const int t = static_cast<int>(item / hp.n_head_kv), kvh = static_cast<int>(item % hp.n_head_kv);
      const size_t head = static_cast<size_t>(kvh) * head_stride;
      const size_t first_q = static_cast<size_t>(t) * e + static_cast<size_t>(kvh) * group * hd;
      const KvHeadAttention item_args = {q_.data() + first_q, k_layer + head, v_layer + head, static_cast<size_t>(hd), hd,
                                         group, pos_ + t + 1, scale, att_.data() + first_q};
      AttendKvHead(item_args, scratch.data());
    }
  });
}

void LlamaContext::ForwardBatch(std::span<const int32_t> tokens, int first_logit, float* logits) {
  const LlamaHparams& hp = model_.hparams();
  const int n = static_cast<int>(tokens.size());
  const int e = hp.n_embd, kv_dim = hp.kv_dim(), ff = hp.n_ff;
  const WeightRef& emb = model_.token_embd();
  const QuantType* emb_type = FindQuantType(emb.type);
  for (int t = 0; t < n; ++t) {
    emb_type->decode(emb.data + static_cast<size_t>(tokens[t]) * emb.row_bytes, x_.data() + static_cast<size_t>(t) * e, e);
  }
  auto row = [](std::vector<float>& v, int t, int dim) { return v.data() + static_cast<size_t>(t) * dim; };
  const int half_rot = hp.n_rot / 2;
  rope_cos_.resize(static_cast<size_t>(n) * half_rot);
  rope_sin_.resize(static_cast<size_t>(n) * half_rot);
  for (int t = 0; t < n; ++t) {
    RopeAngles(hp.n_rot, pos_ + t, hp.rope_base, row(rope_cos_, t, half_rot), row(rope_sin_, t, half_rot));
  }

  // The per-token steps between the matrix products run over the batch's tokens in parallel (serial, they were
  // a few percent of a 2-thread prefill); a decode token (n = 1) runs them inline. Each layer's last residual
  // add is done with the next layer's first norm, per token: the same operations in the same order.
  constexpr int64_t kTokenGrain = 4;
  auto per_token = [&](const auto& step) {
    pool_.RunChunks(n, kTokenGrain, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) step(static_cast<int>(t));
    });
  };
  auto add_row = [&](int t) {  // x += proj for token t
    float* x = row(x_, t, e);
    const float* pr = row(proj_, t, e);
    for (int i = 0; i < e; ++i) x[i] += pr[i];
  };
  for (int l = 0; l < hp.n_layer; ++l) {
    const LlamaLayer& L = model_.layers()[l];
    per_token([&](int t) {
      if (l > 0) add_row(t);  // the previous layer's feed-forward output
      RmsNorm(row(x_, t, e), L.attn_norm.data(), row(xn_, t, e), e, hp.rms_eps);
    });
    Observe(l, "attn_qkv", xn_.data(), e, n, e);
    const LinearOut qkv[] = {{&L.wq, q_.data(), static_cast<size_t>(e)},
                             {&L.wk, k_.data(), static_cast<size_t>(kv_dim)},
                             {&L.wv, v_.data(), static_cast<size_t>(kv_dim)}};
    Linear(qkv, xn_.data(), e, n);
    per_token([&](int t) {
      float *q = row(q_, t, e), *k = row(k_, t, kv_dim), *v = row(v_, t, kv_dim);
      for (size_t i = 0; i < L.bq.size(); ++i) q[i] += L.bq[i];
      for (size_t i = 0; i < L.bk.size(); ++i) k[i] += L.bk[i];
      for (size_t i = 0; i < L.bv.size(); ++i) v[i] += L.bv[i];
      const float *c = row(rope_cos_, t, half_rot), *sn = row(rope_sin_, t, half_rot);
      Rope(q, hp.n_head, hp.head_dim, hp.n_rot, c, sn, hp.neox_rope);
      Rope(k, hp.n_head_kv, hp.head_dim, hp.n_rot, c, sn, hp.neox_rope);
      // The cache is head-major within a layer ([KV head][position][head_dim]): an attention item reads its
      // head's rows as one contiguous run. Position-major, its rows were strided by the whole KV width, and
      // 1-thread Q4_0 decode after a 1024-token prompt spent 18-20% of its layers' time in attention, 13% now
      // (21.7-23.2 -> 23.8-24.3 tok/s).
      for (int h = 0; h < hp.n_head_kv; ++h) {
        const size_t slot = static_cast<size_t>(l) * n_ctx_ * kv_dim + (static_cast<size_t>(h) * n_ctx_ + pos_ + t) * hp.head_dim;
        F32ToF16Row(k + h * hp.head_dim, k_cache() + slot, hp.head_dim);
        F32ToF16Row(v + h * hp.head_dim, v_cache() + slot, hp.head_dim);
      }
    });
    Attention(l, n);
    Observe(l, "attn_output", att_.data(), e, n, e);
    const LinearOut wo[] = {{&L.wo, proj_.data(), static_cast<size_t>(e)}};
    Linear(wo, att_.data(), e, n);
    per_token([&](int t) {
      add_row(t);
      RmsNorm(row(x_, t, e), L.ffn_norm.data(), row(xn_, t, e), e, hp.rms_eps);
    });
    Observe(l, "ffn_gate_up", xn_.data(), e, n, e);
    const LinearOut gate_up[] = {{&L.gate, gate_.data(), static_cast<size_t>(ff)},
                                 {&L.up, up_.data(), static_cast<size_t>(ff)}};
    Linear(gate_up, xn_.data(), e, n, /*swiglu=*/true);  // gate_ = SiLU(gate) * up
    Observe(l, "ffn_down", gate_.data(), ff, n, ff);
    const LinearOut down[] = {{&L.down, proj_.data(), static_cast<size_t>(e)}};
    Linear(down, gate_.data(), ff, n);
  }
  per_token([&](int t) {
    if (hp.n_layer > 0) add_row(t);  // the last layer's feed-forward output
  });
  pos_ += n;
  if (first_logit >= n) return;
  for (int t = first_logit; t < n; ++t) RmsNorm(row(x_, t, e), model_.output_norm().data(), row(xn_, t, e), e, hp.rms_eps);
  const LinearOut out[] = {{&model_.output(), logits, static_cast<size_t>(hp.n_vocab)}};
  Linear(out, row(xn_, first_logit, e), e, n - first_logit);
}

}  // namespace qforge
