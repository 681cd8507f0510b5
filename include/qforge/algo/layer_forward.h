// A plain float32, batched forward pass of one Llama-family block (RMSNorm, Q/K/V with optional Qwen2
// biases, RoPE in the GGUF layout, causal GQA attention, SwiGLU) over one chunk of tokens at a time.
// Calibration (GPTQ, AWQ, importance) runs the model block by block with it: the hidden states of every
// calibration token are the only activations kept, weights are read one block at a time from any
// SourceModel. Unlike the runtime (llama_context.cc) nothing is rounded to F16 or to a dot-product format:
// the statistics describe the model's own function, not one engine's rounding.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "qforge/core/status.h"
#include "qforge/formats/source_model.h"

namespace qforge {

struct BlockShape {
  std::string arch;  // "llama" or "qwen2"
  int n_vocab = 0, n_embd = 0, n_ff = 0, n_layer = 0, n_head = 0, n_head_kv = 0, head_dim = 0, n_rot = 0;
  float rope_base = 10000.0f;
  float rms_eps = 1e-5f;
  bool neox_rope = false;  // qwen2 pairs (i, i + n_rot/2); llama pairs (2i, 2i+1)
  int kv_dim() const { return n_head_kv * head_dim; }
};

// Hyper-parameters from the GGUF metadata every reader produces, checked against token_embd's shape.
StatusOr<BlockShape> ReadBlockShape(const SourceModel& model);

// One block's weights as floats. Matrices are row-major [rows x cols] = GGUF ne {cols, rows}: row r is
// output r. Biases are empty when the model has none.
struct BlockWeights {
  std::vector<float> attn_norm, ffn_norm;
  std::vector<float> bq, bk, bv;
  std::vector<float> wq, wk, wv, wo, gate, up, down;
};

// Reads blk.<layer>.* (any stored type), checking every shape against `shape`.
StatusOr<BlockWeights> ReadBlockWeights(const SourceModel& model, const BlockShape& shape, int layer);

// The inputs of the block's linear layers for one chunk, row-major [n_tokens x cols].
struct BlockInputs {
  std::vector<float> attn_in;     // attn_norm output: input of attn_q/k/v  (cols n_embd)
  std::vector<float> attn_out;    // attention output: input of attn_output (cols n_embd)
  std::vector<float> ffn_in;      // ffn_norm output: input of ffn_gate/up  (cols n_embd)
  std::vector<float> ffn_hidden;  // silu(gate) * up: input of ffn_down     (cols n_ff)
};

// Runs the block on one chunk, in place: hidden is [n_tokens x n_embd] for positions 0..n_tokens-1, each
// token attending to itself and the ones before it. inputs (optional) receives the linear layers' inputs.
void BlockForward(const BlockShape& shape, const BlockWeights& w, float* hidden, int64_t n_tokens,
                  BlockInputs* inputs = nullptr);

// y[n x rows] = x[n x cols] * W^T for a row-major W [rows x cols] (the products all calibration code uses).
void LinearRows(const float* x, int64_t n, int64_t cols, const float* w, int64_t rows, float* y);

}  // namespace qforge
