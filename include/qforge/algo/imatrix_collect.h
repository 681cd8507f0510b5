// Collecting an importance matrix: run calibration chunks through the model and, for every weight matrix,
// add up x² of each input column over all tokens (the diagonal of the input's second moment, which is
// what the quantizers weigh each column's error by). Like llama.cpp's llama-imatrix, it records the
// matrices inside the blocks (attn_q/k/v/output, ffn_gate/up/down); token_embd is a lookup, not a product,
// and output.weight is left out as llama.cpp does by default (its --process-output is off).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "qforge/core/status.h"
#include "qforge/formats/imatrix.h"
#include "qforge/runtime/llama_context.h"
#include "qforge/runtime/llama_model.h"

namespace qforge {

// Accumulates what a LlamaContext's linear hook shows it. Inputs shared by several matrices (q/k/v,
// gate/up) are summed once per group and copied to each matrix at the end.
class ImatrixAccumulator {
 public:
  explicit ImatrixAccumulator(const LlamaModel& model);
  // The hook body: adds x² of one token's input vector to its (layer, group).
  void Observe(const LinearInput& input);
  // Per weight name: float sums and token counts. Error if an observed vector's length differs from the
  // matrix's column count (the runtime and the model disagree) or a sum is not finite.
  StatusOr<Imatrix> Result() const;
  int64_t tokens_observed() const;

 private:
  struct Group {
    std::vector<double> sums;
    int64_t count = 0;
  };
  static constexpr int kGroups = 4;  // attn_qkv, attn_output, ffn_gate_up, ffn_down
  const LlamaModel& model_;
  std::vector<Group> groups_;  // [layer * kGroups + group]
};

struct ImatrixCollectOptions {
  int threads = 1;
  std::string dataset;  // recorded in imatrix.datasets (the calibration file's path)
  // Called after each chunk: (chunks done, total).
  std::function<void(size_t done, size_t total)> progress;
};

// Runs every chunk from position 0 (a fresh context each time, like llama.cpp's per-chunk KV clear) and
// returns the collected imatrix; chunk_size is the chunk length, chunk_count the number of chunks.
StatusOr<Imatrix> CollectImatrix(const LlamaModel& model, const std::vector<std::vector<int32_t>>& chunks,
                                 const ImatrixCollectOptions& options);

}  // namespace qforge
