// Block-by-block calibration and quantization (GPTQ's sequential mode, Frantar et al. 2022 section 4
// "Step 3"; AWQ, Lin et al. 2023 section 3.2). Per block: (1) run the block with its float weights on the
// current hidden states and record the inputs of its linear layers; (2) AWQ: search and fold the scales;
// (3) quantize each matrix with the method; (4) run the block again with the weights the file will hold
// (dequantized, folded) so the next block calibrates on what the quantized model really produces.
#include "qforge/pipeline/calibrated_encoder.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "qforge/formats/gguf.h"
#include "qforge/pipeline/tensor_codec.h"
#include "qforge/quant/registry.h"

namespace qforge {
namespace {

// "blk.<n>.<rest>" -> n; -1 for tensors outside the blocks.
int BlockIndex(std::string_view name) {
  if (name.substr(0, 4) != "blk.") return -1;
  size_t i = 4;
  int64_t n = 0;
  while (i < name.size() && name[i] >= '0' && name[i] <= '9' && n < (1 << 24)) n = n * 10 + (name[i++] - '0');
  if (i == 4 || i >= name.size() || name[i] != '.') return -1;
  return static_cast<int>(n);
}

bool UsesGptq(QuantMethod m) { return m == QuantMethod::kGptq || m == QuantMethod::kAwqGptq; }
bool UsesAwq(QuantMethod m) { return m == QuantMethod::kAwq || m == QuantMethod::kAwqGptq; }

}  // namespace

StatusOr<QuantMethod> ParseQuantMethod(std::string_view name) {
  if (name == "rtn") return QuantMethod::kRtn;
  if (name == "imatrix") return QuantMethod::kImatrix;
  if (name == "gptq") return QuantMethod::kGptq;
  if (name == "awq") return QuantMethod::kAwq;
  if (name == "awq+gptq") return QuantMethod::kAwqGptq;
  return Status::Error(fmt::format("unknown method '{}' (expected rtn, imatrix, gptq, awq or awq+gptq)", name));
}

std::string_view QuantMethodName(QuantMethod method) {
  switch (method) {
    case QuantMethod::kRtn: return "rtn";
    case QuantMethod::kImatrix: return "imatrix";
    case QuantMethod::kGptq: return "gptq";
    case QuantMethod::kAwq: return "awq";
    case QuantMethod::kAwqGptq: return "awq+gptq";
  }
  return "?";
}

StatusOr<std::unique_ptr<CalibratedEncoder>> CalibratedEncoder::Create(const SourceModel& model,
                                                                       std::vector<TensorChoice> plan,
                                                                       std::vector<std::vector<int32_t>> chunks,
                                                                       CalibratedOptions options) {
  QF_ASSIGN_OR_RETURN(BlockShape shape, ReadBlockShape(model));
  if (chunks.empty()) return Status::Error("calibration needs at least one chunk of tokens");
  std::unique_ptr<CalibratedEncoder> enc(new CalibratedEncoder(model, shape, std::move(options)));
  for (const auto& c : plan) enc->planned_[c.name] = c.type;
  enc->options_.awq.threads = enc->options_.threads;

  // The hidden states start as the embedding rows of the calibration tokens. Rows are decoded one at a
  // time from the stored bytes when the registry knows the type (a large vocabulary is never expanded).
  const SourceTensor* emb = model.FindTensor("token_embd.weight");
  const int64_t e = shape.n_embd;
  int64_t total = 0;
  for (const auto& c : chunks) {
    if (c.empty()) return Status::Error("calibration chunk is empty");
    for (int32_t t : c)
      if (t < 0 || t >= shape.n_vocab)
        return Status::Error(fmt::format("calibration token id {} out of range [0, {})", t, shape.n_vocab));
    enc->chunk_start_.push_back(total);
    total += static_cast<int64_t>(c.size());
  }
  enc->chunk_start_.push_back(total);
  enc->hidden_.resize(static_cast<size_t>(total * e));
  const QuantType* q = FindQuantType(emb->type);
  auto row_bytes = GgmlRowBytes(emb->type, static_cast<uint64_t>(e));
  std::vector<float> table;
  const bool by_row = q != nullptr && q->decode != nullptr && row_bytes && !emb->raw.empty() &&
                      emb->raw.size() == *row_bytes * static_cast<uint64_t>(shape.n_vocab);
  if (!by_row) {
    table.resize(emb->numel());
    QF_RETURN_IF_ERROR(ReadTensorF32(*emb, table.data()).WithContext("tensor token_embd.weight"));
  }
  int64_t pos = 0;
  for (const auto& c : chunks) {
    for (int32_t t : c) {
      float* dst = enc->hidden_.data() + pos * e;
      if (by_row) {
        q->decode(emb->raw.data() + static_cast<size_t>(t) * *row_bytes, dst, e);
      } else {
        std::memcpy(dst, table.data() + static_cast<size_t>(t) * e, sizeof(float) * e);
      }
      ++pos;
    }
  }
  return enc;
}

GgmlType CalibratedEncoder::PlannedType(const std::string& name) const {
  auto it = planned_.find(name);
  return it == planned_.end() ? GgmlType::F32 : it->second;
}

Status CalibratedEncoder::KeepVector(const std::string& name, const std::vector<float>& values) {
  const GgmlType type = PlannedType(name);
  QF_ASSIGN_OR_RETURN(uint64_t nbytes, GgufTensorBytes(type, {static_cast<uint64_t>(values.size())}));
  std::vector<uint8_t> bytes(nbytes);
  QF_RETURN_IF_ERROR(EncodeTensor(type, values.data(), values.size(), values.size(), bytes.data()).WithContext(
      "tensor " + name));
  pending_[name] = std::move(bytes);
  return Status::Ok();
}

Status CalibratedEncoder::QuantizeMatrix(const std::string& name, std::vector<float>* w, int64_t rows, int64_t cols,
                                         const InputStats& stats) {
  const GgmlType type = PlannedType(name);
  const std::vector<uint64_t> ne = {static_cast<uint64_t>(cols), static_cast<uint64_t>(rows)};
  QF_ASSIGN_OR_RETURN(uint64_t nbytes, GgufTensorBytes(type, ne));
  std::vector<uint8_t> bytes(nbytes);
  const QuantMethod m = options_.method;
  const bool quantized = !IsFloatGgmlType(type);
  const uint64_t numel = static_cast<uint64_t>(rows * cols);
  if (quantized && UsesGptq(m) && GptqSupportsType(type)) {
    GptqOptions g = options_.gptq;
    g.threads = options_.threads;
    QF_RETURN_IF_ERROR(GptqQuantize(name, type, w->data(), rows, cols, stats.hessian().data(), bytes, g));
  } else if (quantized && (m == QuantMethod::kImatrix || UsesGptq(m))) {
    // GPTQ without support for this type still uses what calibration knows: diag(H) = Σx² as importance.
    if (UsesGptq(m)) {
      reports_.back().notes.push_back(
          fmt::format("{}: GPTQ does not support {}, imatrix-weighted RTN used", name, GgmlTypeName(type)));
    }
    const std::vector<float> importance = stats.MeanSquares();
    QF_RETURN_IF_ERROR(EncodeTensor(type, w->data(), numel, static_cast<uint64_t>(cols), bytes.data(),
                                    importance.data(), options_.threads)
                           .WithContext("tensor " + name));
  } else {
    // AWQ then RTN (and float types): plain round-to-nearest, so unit scales reproduce `--method rtn`.
    QF_RETURN_IF_ERROR(EncodeTensor(type, w->data(), numel, static_cast<uint64_t>(cols), bytes.data(), nullptr,
                                    options_.threads)
                           .WithContext("tensor " + name));
  }
  // The next pass runs on exactly what the file holds.
  const QuantType* q = FindQuantType(type);
  if (q == nullptr || q->decode == nullptr) return Status::Error(fmt::format("tensor {}: {} has no decoder", name,
                                                                             GgmlTypeName(type)));
  const uint64_t row_bytes = nbytes / static_cast<uint64_t>(rows);
  for (int64_t r = 0; r < rows; ++r) q->decode(bytes.data() + r * row_bytes, w->data() + r * cols, cols);
  pending_[name] = std::move(bytes);
  return Status::Ok();
}

Status CalibratedEncoder::ProcessBlock(int layer) {
  const BlockShape& s = shape_;
  const int64_t e = s.n_embd, kv = s.kv_dim(), ff = s.n_ff;
  QF_ASSIGN_OR_RETURN(BlockWeights w, ReadBlockWeights(model_, s, layer));
  reports_.push_back(BlockReport{layer, {}, {}});
  const QuantMethod m = options_.method;
  const int64_t total = static_cast<int64_t>(hidden_.size()) / e;

  StatsWanted want;
  want.hessian = UsesGptq(m);
  if (UsesAwq(m)) want.sample_stride = std::max<int64_t>(1, (total + options_.awq_sample_tokens - 1) /
                                                               std::max<int64_t>(1, options_.awq_sample_tokens));
  InputStats qkv(e, want), attn_out(e, want), gate_up(e, want), down(ff, want);
  std::vector<float> scratch;
  BlockInputs in;
  for (size_t c = 0; c + 1 < chunk_start_.size(); ++c) {
    const int64_t t0 = chunk_start_[c], n = chunk_start_[c + 1] - t0;
    scratch.assign(hidden_.begin() + t0 * e, hidden_.begin() + (t0 + n) * e);
    BlockForward(s, w, scratch.data(), n, &in);
    qkv.Add(in.attn_in.data(), n, t0);
    attn_out.Add(in.attn_out.data(), n, t0);
    gate_up.Add(in.ffn_in.data(), n, t0);
    down.Add(in.ffn_hidden.data(), n, t0);
  }

  const std::string p = fmt::format("blk.{}.", layer);
  if (UsesAwq(m)) {
    struct Group {
      AwqGroup id;
      const char* name;
      InputStats* stats;
      std::vector<AwqLinear> linears;
    };
    auto linear = [&](const char* suffix, const std::vector<float>& wt, int64_t rows) {
      const std::string name = p + suffix;
      return AwqLinear{name, wt.data(), rows, PlannedType(name)};
    };
    // AutoAWQ's order; each search sees the weights as already scaled by the groups before it.
    std::vector<Group> groups;
    groups.push_back({AwqGroup::kAttnQkv, "attn_qkv", &qkv,
                      {linear("attn_q.weight", w.wq, e), linear("attn_k.weight", w.wk, kv),
                       linear("attn_v.weight", w.wv, kv)}});
    groups.push_back({AwqGroup::kAttnOutput, "attn_output", &attn_out, {linear("attn_output.weight", w.wo, e)}});
    groups.push_back({AwqGroup::kFfnGateUp, "ffn_gate_up", &gate_up,
                      {linear("ffn_gate.weight", w.gate, ff), linear("ffn_up.weight", w.up, ff)}});
    groups.push_back({AwqGroup::kFfnDown, "ffn_down", &down, {linear("ffn_down.weight", w.down, e)}});
    for (Group& g : groups) {
      if (!AwqGroupFoldable(s, g.id)) {
        reports_.back().notes.push_back(std::string(g.name) + ": no AWQ scales (GQA: no one-to-one V channel)");
        continue;
      }
      QF_ASSIGN_OR_RETURN(AwqResult r, SearchAwqScales(g.linears, g.stats->cols(), g.stats->MeanAbs(),
                                                       g.stats->sample().data(), g.stats->sample_rows(),
                                                       options_.awq));
      reports_.back().awq.push_back({g.name, r.alpha, r.error, r.error_rtn});
      FoldAwqScales(s, g.id, r.scales, &w);
      g.stats->DivideColumns(r.scales);
    }
    QF_RETURN_IF_ERROR(KeepVector(p + "attn_norm.weight", w.attn_norm));
    QF_RETURN_IF_ERROR(KeepVector(p + "ffn_norm.weight", w.ffn_norm));
    if (!w.bv.empty()) QF_RETURN_IF_ERROR(KeepVector(p + "attn_v.bias", w.bv));
  }

  QF_RETURN_IF_ERROR(QuantizeMatrix(p + "attn_q.weight", &w.wq, e, e, qkv));
  QF_RETURN_IF_ERROR(QuantizeMatrix(p + "attn_k.weight", &w.wk, kv, e, qkv));
  QF_RETURN_IF_ERROR(QuantizeMatrix(p + "attn_v.weight", &w.wv, kv, e, qkv));
  QF_RETURN_IF_ERROR(QuantizeMatrix(p + "attn_output.weight", &w.wo, e, e, attn_out));
  QF_RETURN_IF_ERROR(QuantizeMatrix(p + "ffn_gate.weight", &w.gate, ff, e, gate_up));
  QF_RETURN_IF_ERROR(QuantizeMatrix(p + "ffn_up.weight", &w.up, ff, e, gate_up));
  QF_RETURN_IF_ERROR(QuantizeMatrix(p + "ffn_down.weight", &w.down, e, ff, down));

  // Sequential mode: the next block sees the quantized block's outputs.
  for (size_t c = 0; c + 1 < chunk_start_.size(); ++c) {
    const int64_t t0 = chunk_start_[c], n = chunk_start_[c + 1] - t0;
    BlockForward(s, w, hidden_.data() + t0 * e, n, nullptr);
  }
  return Status::Ok();
}

StatusOr<bool> CalibratedEncoder::Encode(const SourceTensor& tensor, GgmlType type, std::span<uint8_t> out) {
  const int layer = BlockIndex(tensor.name);
  if (layer < 0 || layer >= shape_.n_layer) return false;
  while (next_block_ <= layer) {
    QF_RETURN_IF_ERROR(ProcessBlock(next_block_).WithContext(fmt::format("calibrating block {}", next_block_)));
    ++next_block_;
    if (options_.on_block) options_.on_block(next_block_, shape_.n_layer);
  }
  auto it = pending_.find(tensor.name);
  if (it == pending_.end()) return false;
  if (type != PlannedType(tensor.name) || out.size() != it->second.size()) {
    return Status::Error(fmt::format("tensor {}: the writer asks for {} ({} bytes), calibration planned {} ({} bytes)",
                                     tensor.name, GgmlTypeName(type), out.size(),
                                     GgmlTypeName(PlannedType(tensor.name)), it->second.size()));
  }
  std::copy(it->second.begin(), it->second.end(), out.begin());
  pending_.erase(it);
  if (next_block_ == shape_.n_layer && pending_.empty()) std::vector<float>().swap(hidden_);  // all written
  return true;
}

}  // namespace qforge
