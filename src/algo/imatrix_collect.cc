// Σx² per input column of every block matrix, accumulated in double from the runtime's linear hook.
#include "qforge/algo/imatrix_collect.h"

#include <cmath>

#include <fmt/format.h>

namespace qforge {
namespace {

int GroupIndex(std::string_view group) {
  if (group == "attn_qkv") return 0;
  if (group == "attn_output") return 1;
  if (group == "ffn_gate_up") return 2;
  if (group == "ffn_down") return 3;
  return -1;  // a group this collector does not know: ignored rather than guessed at
}

// The matrices that read group g's input in one layer.
std::vector<const WeightRef*> GroupWeights(const LlamaLayer& layer, int g) {
  switch (g) {
    case 0: return {&layer.wq, &layer.wk, &layer.wv};
    case 1: return {&layer.wo};
    case 2: return {&layer.gate, &layer.up};
    default: return {&layer.down};
  }
}

}  // namespace

ImatrixAccumulator::ImatrixAccumulator(const LlamaModel& model)
    : model_(model), groups_(model.layers().size() * kGroups) {}

void ImatrixAccumulator::Observe(const LinearInput& in) {
  const int g = GroupIndex(in.group);
  if (g < 0 || in.layer < 0 || static_cast<size_t>(in.layer) >= model_.layers().size() || in.n <= 0) return;
  Group& acc = groups_[static_cast<size_t>(in.layer) * kGroups + g];
  if (acc.sums.empty()) acc.sums.assign(static_cast<size_t>(in.n), 0.0);
  if (acc.sums.size() != static_cast<size_t>(in.n)) {
    acc.count = -1;  // reported by Result(): the same group changed width
    return;
  }
  for (int j = 0; j < in.n; ++j) acc.sums[j] += static_cast<double>(in.x[j]) * in.x[j];
  if (acc.count >= 0) ++acc.count;
}

int64_t ImatrixAccumulator::tokens_observed() const {
  int64_t most = 0;
  for (const Group& g : groups_) most = std::max(most, g.count);
  return most;
}

StatusOr<Imatrix> ImatrixAccumulator::Result() const {
  Imatrix im;
  for (size_t l = 0; l < model_.layers().size(); ++l) {
    for (int g = 0; g < kGroups; ++g) {
      const Group& acc = groups_[l * kGroups + g];
      if (acc.count == 0) continue;
      for (const WeightRef* w : GroupWeights(model_.layers()[l], g)) {
        if (acc.count < 0 || static_cast<int64_t>(acc.sums.size()) != w->cols)
          return Status::Error(fmt::format("tensor {}: the forward pass fed inputs of length {} to a matrix with {} "
                                           "columns",
                                           w->name, acc.sums.size(), w->cols));
        ImatrixEntry e;
        e.sums.reserve(acc.sums.size());
        for (double s : acc.sums) {
          if (!std::isfinite(s) || s > 3.4e38)
            return Status::Error(fmt::format("tensor {}: Σx² is not finite as F32 ({}); the model produced "
                                             "non-finite activations",
                                             w->name, s));
          e.sums.push_back(static_cast<float>(s));
        }
        e.counts = {acc.count};
        im.entries[w->name] = std::move(e);
      }
    }
  }
  return im;
}

StatusOr<Imatrix> CollectImatrix(const LlamaModel& model, const std::vector<std::vector<int32_t>>& chunks,
                                 const ImatrixCollectOptions& options) {
  if (chunks.empty()) return Status::Error("no calibration chunks to run");
  const size_t ctx = chunks.front().size();
  for (const auto& c : chunks)
    if (c.size() != ctx || ctx == 0) return Status::Error("calibration chunks must all have the same, non-zero length");
  LlamaContext context(model, static_cast<int>(ctx), options.threads);
  ImatrixAccumulator acc(model);
  context.set_linear_hook([&acc](const LinearInput& in) { acc.Observe(in); });
  std::vector<float> logits;
  for (size_t i = 0; i < chunks.size(); ++i) {
    context.Reset();  // every chunk starts at position 0 with an empty cache
    QF_RETURN_IF_ERROR(context.Eval(chunks[i], /*all_logits=*/false, &logits).WithContext(
        fmt::format("calibration chunk {}", i + 1)));
    if (options.progress) options.progress(i + 1, chunks.size());
  }
  QF_ASSIGN_OR_RETURN(Imatrix im, acc.Result());
  im.chunk_count = static_cast<int64_t>(chunks.size());
  im.chunk_size = static_cast<int64_t>(ctx);
  if (!options.dataset.empty()) im.datasets.push_back(options.dataset);
  return im;
}

}  // namespace qforge
