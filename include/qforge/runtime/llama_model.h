// A Llama-family model (llama, qwen2 architectures in GGUF) bound to its mmap'd GGUF: hyper-parameters
// from metadata and weight references in their stored type. Nothing is dequantized up front; norms
// (tiny) are copied to floats.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "qforge/core/status.h"
#include "qforge/formats/gguf.h"
#include "qforge/kernels/matvec.h"

namespace qforge {

struct LlamaHparams {
  std::string arch;  // "llama" or "qwen2"
  int n_vocab = 0, n_embd = 0, n_ff = 0, n_layer = 0, n_head = 0, n_head_kv = 0, head_dim = 0, n_rot = 0;
  int n_ctx_train = 0;
  float rope_base = 10000.0f;
  float rms_eps = 1e-5f;
  bool neox_rope = false;  // qwen2: rotate (i, i + n_rot/2); llama: adjacent pairs (2i, 2i+1)
  int kv_dim() const { return n_head_kv * head_dim; }
};

// A weight matrix of `rows` outputs x `cols` inputs (GGUF ne = {cols, rows}) in its stored type.
struct WeightRef {
  std::string name;
  GgmlType type = GgmlType::F32;
  const uint8_t* data = nullptr;
  int64_t rows = 0, cols = 0;
  size_t row_bytes = 0;
  const MatVecKernel* kernel = nullptr;
  // Set when `data` is a packed copy made at load (then `kernel` reads that layout, and row r is no longer at
  // data + r * row_bytes): see PackedLayout in qforge/kernels/matvec.h.
  const PackedLayout* packed = nullptr;
};

struct LlamaLayer {
  std::vector<float> attn_norm, ffn_norm;
  std::vector<float> bq, bk, bv;  // empty when the model has no attention biases
  WeightRef wq, wk, wv, wo, gate, up, down;
};

class LlamaModel {
 public:
  static StatusOr<LlamaModel> Load(const std::string& path);
  static StatusOr<LlamaModel> FromGguf(GgufFile file);

  const LlamaHparams& hparams() const { return hp_; }
  const GgufFile& gguf() const { return file_; }
  const WeightRef& token_embd() const { return token_embd_; }
  const WeightRef& output() const { return output_; }  // token_embd when tied
  const std::vector<float>& output_norm() const { return output_norm_; }
  const std::vector<LlamaLayer>& layers() const { return layers_; }
  // Bytes of weights read to produce one token (all matrices once, packed copies at their packed size, + one
  // embedding row).
  uint64_t WeightBytesPerToken() const;
  // Replaces every kernel with the scalar reference (tests, QFORGE_KERNELS=scalar); a packed matrix gets its
  // layout's scalar spec.
  void UseScalarKernels();
  // Bytes of packed weight copies made at load (0 when no matrix is packed on this CPU).
  uint64_t PackedBytes() const { return packed_bytes_; }

 private:
  // Replaces each matrix that has a faster packed layout on this CPU by its packed copy (FindPackedLayout).
  Status PackWeights();

  GgufFile file_;
  LlamaHparams hp_;
  WeightRef token_embd_, output_;
  std::vector<float> output_norm_;
  std::vector<LlamaLayer> layers_;
  std::shared_ptr<uint8_t> packed_;  // the arena of packed copies WeightRef::data points into
  uint64_t packed_bytes_ = 0;
};

}  // namespace qforge
