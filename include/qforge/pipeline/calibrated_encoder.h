// The calibrated methods of `qforge quantize --method` as a TensorEncoder: imatrix-weighted RTN, GPTQ, AWQ
// (then RTN) and AWQ then GPTQ. The model is processed block by block in GPTQ's sequential mode: when a
// tensor of block L is asked for, blocks up to L are calibrated and quantized, each on the hidden states
// produced by the already-quantized blocks before it. Memory: the hidden states of the calibration tokens
// ([tokens x n_embd] floats), one block's weights and its statistics, and the encoded bytes of the blocks
// not yet written. Tensors outside the blocks (token_embd, output_norm, output) and any tensor the method
// does not touch are left to the registry encoder.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "qforge/algo/awq.h"
#include "qforge/algo/calibration_stats.h"
#include "qforge/algo/gptq.h"
#include "qforge/algo/layer_forward.h"
#include "qforge/algo/policy.h"
#include "qforge/pipeline/quantize.h"

namespace qforge {

enum class QuantMethod { kRtn, kImatrix, kGptq, kAwq, kAwqGptq };

StatusOr<QuantMethod> ParseQuantMethod(std::string_view name);  // rtn|imatrix|gptq|awq|awq+gptq
std::string_view QuantMethodName(QuantMethod method);

struct CalibratedOptions {
  QuantMethod method = QuantMethod::kImatrix;
  GptqOptions gptq;
  AwqOptions awq;
  int64_t awq_sample_tokens = 1024;  // rows of each group input kept for AWQ's error search
  int threads = 1;
  // After each block: (blocks done, blocks total).
  std::function<void(int done, int total)> on_block;
};

// What happened in one block (AWQ's chosen α and errors per group, GPTQ fallbacks).
struct BlockReport {
  int layer = 0;
  struct Group {
    std::string name;  // "attn_qkv", "attn_output", "ffn_gate_up", "ffn_down"
    double alpha = 0, error = 0, error_rtn = 0;
  };
  std::vector<Group> awq;
  std::vector<std::string> notes;  // e.g. "attn_output: no AWQ fold (n_head != n_head_kv)"
};

class CalibratedEncoder : public TensorEncoder {
 public:
  // plan: the types QuantizeToGguf will store (PlanQuantization(model, policy).plan). chunks: calibration
  // token ids (LoadCalibrationChunks), every id < n_vocab.
  static StatusOr<std::unique_ptr<CalibratedEncoder>> Create(const SourceModel& model,
                                                             std::vector<TensorChoice> plan,
                                                             std::vector<std::vector<int32_t>> chunks,
                                                             CalibratedOptions options);

  StatusOr<bool> Encode(const SourceTensor& tensor, GgmlType type, std::span<uint8_t> out) override;

  const std::vector<BlockReport>& reports() const { return reports_; }
  // Replaces options.on_block (the CLI's progress bar is created after the encoder).
  void SetBlockCallback(std::function<void(int done, int total)> fn) { options_.on_block = std::move(fn); }
  int64_t tokens() const { return chunk_start_.empty() ? 0 : chunk_start_.back(); }

 private:
  CalibratedEncoder(const SourceModel& model, BlockShape shape, CalibratedOptions options)
      : model_(model), shape_(std::move(shape)), options_(std::move(options)) {}

  Status ProcessBlock(int layer);
  // Encodes one matrix with the method and keeps the bytes; replaces *w with what the file will hold.
  Status QuantizeMatrix(const std::string& name, std::vector<float>* w, int64_t rows, int64_t cols,
                        const InputStats& stats);
  // Keeps a float tensor (a folded norm or bias) in its planned type.
  Status KeepVector(const std::string& name, const std::vector<float>& values);
  GgmlType PlannedType(const std::string& name) const;

  const SourceModel& model_;
  BlockShape shape_;
  CalibratedOptions options_;
  std::map<std::string, GgmlType> planned_;
  std::vector<int64_t> chunk_start_;  // token offset of each chunk in hidden_
  std::vector<float> hidden_;         // [tokens x n_embd]: input of the next block to process
  int next_block_ = 0;
  std::map<std::string, std::vector<uint8_t>> pending_;  // encoded tensors waiting for the writer
  std::vector<BlockReport> reports_;
};

}  // namespace qforge
