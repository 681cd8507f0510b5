// The forward pass of a LlamaModel with its KV cache: token embedding, RMSNorm, RoPE, grouped-query
// attention, SwiGLU MLP, classifier. Read top to bottom like llama2.c's run.c; weights are used in their
// stored type through the kernel table. The KV cache is F16, like llama.cpp's default, so logits agree
// with llama.cpp's more closely.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string_view>
#include <vector>

#include "qforge/core/huge_pages.h"
#include "qforge/core/status.h"
#include "qforge/runtime/llama_model.h"
#include "qforge/runtime/thread_pool.h"

namespace qforge {

// What a calibration hook sees: the input vector of a group of linear layers that share it.
struct LinearInput {
  int layer = 0;
  std::string_view group;  // "attn_qkv" (q,k,v), "attn_output", "ffn_gate_up" (gate,up), "ffn_down"
  const float* x = nullptr;
  int n = 0;
};
using LinearHook = std::function<void(const LinearInput&)>;

class LlamaContext {
 public:
  // n_ctx: KV cache length in tokens (<= 0: the model's training context). threads: pool size.
  LlamaContext(const LlamaModel& model, int n_ctx, int threads);

  // Runs `tokens` at positions pos()..pos()+n-1 and advances pos(). logits: if all_logits, n x n_vocab
  // values (one row per token), else n_vocab values for the last token. Errors: context full, token id out
  // of range.
  Status Eval(std::span<const int32_t> tokens, bool all_logits, std::vector<float>* logits);
  void Reset() { pos_ = 0; }
  int pos() const { return pos_; }
  int n_ctx() const { return n_ctx_; }
  const LlamaModel& model() const { return model_; }
  int threads() const { return pool_.threads(); }

  // Observes every linear group's input (calibration). Empty = no overhead beyond one branch.
  void set_linear_hook(LinearHook hook) { hook_ = std::move(hook); }

 private:
  // One matrix of a group that shares its input: y[t * ldy + r] = W[r] · input_t.
  struct LinearOut {
    const WeightRef* w;
    float* y;
    size_t ldy;
  };
  // Runs one batch of tokens at positions pos_..pos_+n-1 and advances pos_. Tokens first_logit..n-1 get
  // their logits, one n_vocab row each, written consecutively from `logits` (first_logit = n: none).
  void ForwardBatch(std::span<const int32_t> tokens, int first_logit, float* logits);
  // All matrices of `outs` on the same n input rows (x, `ldx` floats apart) in one parallel region. swiglu:
  // outs is {gate, up} (the same row count) and gate's output becomes SiLU(gate) * up.
  void Linear(std::span<const LinearOut> outs, const float* x, size_t ldx, int n, bool swiglu = false);
  void Attention(int layer, int n);
  void Observe(int layer, std::string_view group, const float* x, size_t ldx, int n_rows, int n) {
    if (!hook_) return;
    for (int t = 0; t < n_rows; ++t) hook_(LinearInput{layer, group, x + t * ldx, n});
  }

  const LlamaModel& model_;
  int n_ctx_;
  int pos_ = 0;
  ThreadPool pool_;
  LinearHook hook_;
  // [layer][KV head][pos][head_dim], F16, on huge pages: a decode token writes 2 * n_head_kv rows per layer, each
  // in its own head's region (n_ctx * head_dim * 2 bytes apart), and on 4 KB pages each of those stores missed
  // the TLB and then memory (its page tables long evicted by the weights streamed in between): ~14 us per layer
  // for 512 values, on one thread while the others waited.
  HugePageBuffer k_cache_buf_, v_cache_buf_;
  uint16_t* k_cache() const { return reinterpret_cast<uint16_t*>(k_cache_buf_.get()); }
  uint16_t* v_cache() const { return reinterpret_cast<uint16_t*>(v_cache_buf_.get()); }
  // Scratch for one batch of up to kBatch tokens, row-major [token][dim].
  std::vector<float> x_, xn_, q_, k_, v_, att_, proj_, gate_, up_;
  std::vector<float> rope_cos_, rope_sin_;  // [token][n_rot / 2]: the batch's rotation angles
  std::vector<PreparedActivation> acts_;  // one per (matrix kind in a group, token)
};

}  // namespace qforge
